-- Neovim (0.7+) as a second, independent LSP client for the ViT Lens server.
--
-- Run headless by test/neovim.test.ts:
--   nvim --headless --clean -n -i NONE -u NONE -c 'lua dofile(os.getenv("VITLENS_NVIM_SCRIPT"))'
-- (0.7 has no `-l`). Everything comes in through the environment:
--   VITLENS_NODE    node binary that runs the server (the test's process.execPath)
--   VITLENS_SERVER  path of dist/server.js
--   VITLENS_TINY    fixtures/configs/soft/SOFT_Tiny.yaml
--   VITLENS_BROKEN  a broken config (…/broken.vitlens.yaml) written by the test
--   VITLENS_RUNNABLE fixtures/configs/tiny_soft.vitlens.yaml (names its checkpoint and an image)
--   VITLENS_OUT     where to write what Neovim received, as JSON
--   VITLENS_WAIT_MS bound for each wait (default 5000)
-- Neovim always exits: `qa!` when every step ran, `cquit 1` when one failed (the JSON
-- then says which step and why). The test also kills it if it ever hangs.

local env = function(name)
  local v = os.getenv(name)
  assert(v and v ~= '', name .. ' is not set')
  return v
end

local out_path = env('VITLENS_OUT')
local wait_ms = tonumber(os.getenv('VITLENS_WAIT_MS') or '') or 5000
local t0 = vim.loop.hrtime()

local report = {
  nvim = vim.version(),
  steps = {},
  published = {},
  log_messages = {},
  show_messages = {},
}

local function step(name)
  table.insert(report.steps, string.format('%7.3f s  %s', (vim.loop.hrtime() - t0) / 1e9, name))
  report.last_step = name
end

--- Waits for `cond` or fails the step with `what`.
local function wait_for(what, cond)
  local ok = vim.wait(wait_ms, cond, 10)
  if not ok then error('timed out after ' .. wait_ms .. ' ms waiting for ' .. what, 2) end
end

local function diagnostics_of(bufnr)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(out, {
      lnum = d.lnum,
      col = d.col,
      end_lnum = d.end_lnum,
      end_col = d.end_col,
      severity = d.severity,
      message = d.message,
      source = d.source,
      code = d.code,
    })
  end
  return out
end

local client_id

local function main()
  local node = env('VITLENS_NODE')
  local server = env('VITLENS_SERVER')
  local tiny_path = env('VITLENS_TINY')
  local broken_path = env('VITLENS_BROKEN')
  local runnable_path = env('VITLENS_RUNNABLE')

  vim.cmd('filetype on')
  vim.o.hidden = true

  step('start_client')
  client_id = vim.lsp.start_client({
    name = 'vitlens',
    cmd = { node, server, '--stdio' },
    root_dir = vim.fn.getcwd(),
    flags = { exit_timeout = 2000 },
    handlers = {
      ['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
        table.insert(report.published, {
          uri = result.uri,
          version = result.version,
          count = #result.diagnostics,
          diagnostics = result.diagnostics,
        })
        return vim.lsp.diagnostic.on_publish_diagnostics(err, result, ctx, config)
      end,
      ['window/logMessage'] = function(_, result)
        table.insert(report.log_messages, result)
      end,
      ['window/showMessage'] = function(_, result)
        table.insert(report.show_messages, result)
      end,
    },
    on_init = function(_, initialize_result)
      report.server_info = initialize_result.serverInfo
      report.server_capabilities = initialize_result.capabilities
    end,
    on_exit = function(code, signal)
      report.server_exit = { code = code, signal = signal }
    end,
  })
  assert(client_id, 'vim.lsp.start_client returned nil')
  wait_for('the initialize handshake', function()
    local c = vim.lsp.get_client_by_id(client_id)
    return report.server_exit ~= nil or (c ~= nil and c.initialized == true)
  end)
  assert(not report.server_exit, 'the server exited before the handshake completed (exit code '
    .. tostring(report.server_exit and report.server_exit.code) .. ')')
  report.offset_encoding = vim.lsp.get_client_by_id(client_id).offset_encoding

  local function open(path)
    vim.cmd('edit ' .. vim.fn.fnameescape(path))
    local bufnr = vim.api.nvim_get_current_buf()
    assert(vim.lsp.buf_attach_client(bufnr, client_id), 'buf_attach_client failed for ' .. path)
    local uri = vim.uri_from_bufnr(bufnr)
    wait_for('diagnostics for ' .. uri, function()
      for _, p in ipairs(report.published) do
        if p.uri == uri then return true end
      end
      return false
    end)
    return bufnr, uri
  end

  -- The official SOFT-Tiny config: no diagnostics expected.
  step('open SOFT_Tiny.yaml')
  local tiny, tiny_uri = open(tiny_path)
  report.tiny = { uri = tiny_uri, filetype = vim.bo[tiny].filetype, diagnostics = diagnostics_of(tiny) }

  -- A broken config: one out-of-range error on line 2.
  step('open broken config')
  local broken, broken_uri = open(broken_path)
  report.broken = { uri = broken_uri, filetype = vim.bo[broken].filetype, diagnostics = diagnostics_of(broken) }

  -- Hover on the `model:` key, at the cursor as a user would ask for it.
  step('hover')
  vim.cmd('buffer ' .. tiny)
  vim.api.nvim_win_set_cursor(0, { 1, 2 })
  local params = vim.lsp.util.make_position_params()
  local responses, why = vim.lsp.buf_request_sync(tiny, 'textDocument/hover', params, wait_ms)
  assert(responses, 'hover: ' .. tostring(why))
  local hover = responses[client_id]
  assert(hover, 'hover: no response from the ViT Lens client')
  report.hover = { params = params, error = hover.error or hover.err, result = hover.result }
  -- What the user sees: Neovim's own hover handler renders the markdown in a float.
  if hover.result then
    local fbuf, fwin = vim.lsp.handlers['textDocument/hover'](nil, hover.result,
      { method = 'textDocument/hover', bufnr = tiny, client_id = client_id }, {})
    if fbuf then
      report.hover.float_lines = vim.api.nvim_buf_get_lines(fbuf, 0, -1, false)
      pcall(vim.api.nvim_win_close, fwin, true)
    end
  end

  -- CodeLens: the raw response, then Neovim's codelens module (refresh → virtual text).
  step('codeLens request')
  local lens_params = { textDocument = vim.lsp.util.make_text_document_params(tiny) }
  local lens_responses, lens_why = vim.lsp.buf_request_sync(tiny, 'textDocument/codeLens', lens_params, wait_ms)
  assert(lens_responses and lens_responses[client_id], 'codeLens: ' .. tostring(lens_why))
  report.codelens = { error = lens_responses[client_id].error, result = lens_responses[client_id].result }

  step('codelens.refresh')
  vim.lsp.codelens.refresh()
  wait_for('vim.lsp.codelens.get() to fill', function()
    return #vim.lsp.codelens.get(tiny) > 0
  end)
  local lenses = {}
  for _, l in ipairs(vim.lsp.codelens.get(tiny)) do
    table.insert(lenses, { line = l.range.start.line, title = l.command and l.command.title, command = l.command and l.command.command })
  end
  report.codelens.stored = lenses
  local ns = vim.lsp.codelens.__namespaces and vim.lsp.codelens.__namespaces[client_id]
  if ns then
    local shown = {}
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(tiny, ns, 0, -1, { details = true })) do
      local text = {}
      for _, chunk in ipairs(m[4].virt_text or {}) do table.insert(text, chunk[1]) end
      table.insert(shown, { row = m[2], text = table.concat(text) })
    end
    report.codelens.virtual_text = shown
  end

  -- The broken config gets no run lenses, only the profile one.
  step('codeLens on broken config')
  local b = vim.lsp.buf_request_sync(broken, 'textDocument/codeLens',
    { textDocument = vim.lsp.util.make_text_document_params(broken) }, wait_ms)
  assert(b and b[client_id], 'codeLens on the broken config: no response')
  local broken_lenses = {}
  for _, l in ipairs(b[client_id].result or {}) do
    table.insert(broken_lenses, l.command and l.command.command or vim.NIL)
  end
  report.broken.codelens_commands = broken_lenses

  -- A config that names its checkpoint and an image: the run lenses and Gradients too.
  step('codeLens on a config with a checkpoint and an image')
  local runnable, runnable_uri = open(runnable_path)
  local rl = vim.lsp.buf_request_sync(runnable, 'textDocument/codeLens',
    { textDocument = vim.lsp.util.make_text_document_params(runnable) }, wait_ms)
  assert(rl and rl[client_id], 'codeLens on the runnable config: no response')
  local runnable_lenses = {}
  for _, l in ipairs(rl[client_id].result or {}) do
    table.insert(runnable_lenses, { title = l.command and l.command.title, command = l.command and l.command.command })
  end
  report.runnable = { uri = runnable_uri, codelens = runnable_lenses }

  -- A clean shutdown: shutdown request, exit notification, server process gone.
  step('stop')
  local client = vim.lsp.get_client_by_id(client_id)
  client.stop()
  wait_for('the server to exit', function() return report.server_exit ~= nil end)
  step('done')
end

local ok, err = xpcall(main, debug.traceback)
report.ok = ok
if not ok then
  report.error = tostring(err)
  if client_id then
    local c = vim.lsp.get_client_by_id(client_id)
    if c then pcall(c.stop, true) end
  end
end
report.seconds = (vim.loop.hrtime() - t0) / 1e9

local f = assert(io.open(out_path, 'w'))
f:write(vim.json.encode(report))
f:close()

vim.cmd(ok and 'qa!' or 'cquit 1')
