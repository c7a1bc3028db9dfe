-- A storm of password logins from many client IPs (through a trusted proxy),
-- for unknown users: each one costs a full argon2 verification.
math.randomseed(os.time())
request = function()
  local ip = string.format("198.18.%d.%d", math.random(0, 255), math.random(1, 254))
  local body = string.format("grant_type=password&username=user%d&password=wrong-password-%d",
    math.random(1, 1000000), math.random(1, 1000000))
  return wrk.format("POST", "/auth/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Forwarded-For"] = ip }, body)
end
