-- wrk script: GET requests for random, aligned byte ranges of one file.
--
--   wrk -s tools/bench/range.lua URL -- FILE_BYTES [RANGE_BYTES]      (default range: 1 MiB)
--
-- Every request asks for RANGE_BYTES at a random multiple of RANGE_BYTES inside the file, so a
-- server that answers 206 sends exactly RANGE_BYTES of body per request.

local size, chunk, slots

function init(args)
  size = tonumber(args[1]) or error("usage: wrk -s range.lua URL -- FILE_BYTES [RANGE_BYTES]")
  chunk = tonumber(args[2]) or 1048576
  slots = math.floor(size / chunk)
  if slots < 1 then error("the file is smaller than one range") end
  -- Different threads get different sequences.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  local start = math.random(0, slots - 1) * chunk
  return wrk.format("GET", nil, { Range = "bytes=" .. start .. "-" .. (start + chunk - 1) })
end
