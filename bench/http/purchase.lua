-- wrk -s bench/http/purchase.lua: POST /api/purchases on one card, each request
-- with a fresh Idempotency-Key, buyers round-robin. Driven by
-- `giftcard-http-bench wrk`, which seeds the card and the buyers and passes:
--   GIFTCARD_CARD         the card id
--   GIFTCARD_USER_PREFIX  buyers are PREFIX0 .. PREFIX(N-1)
--   GIFTCARD_USERS        N
--   GIFTCARD_KEY_PREFIX   prefix of every idempotency key (unique per run)
local card = os.getenv("GIFTCARD_CARD") or "steam-50"
local user_prefix = os.getenv("GIFTCARD_USER_PREFIX") or "u"
local users = tonumber(os.getenv("GIFTCARD_USERS") or "64")
local key_prefix = os.getenv("GIFTCARD_KEY_PREFIX") or "wrk"

local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

local n = 0
local bodies = {}
function init(args)
  for i = 0, users - 1 do
    bodies[i] = '{"card_id":"' .. card .. '","user_id":"' .. user_prefix .. i .. '"}'
  end
end

function request()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key_prefix .. "-t" .. tid .. "-" .. n,
  }
  return wrk.format("POST", "/api/purchases", headers, bodies[n % users])
end
