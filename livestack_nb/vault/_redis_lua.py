"""The Lua scripts of the Redis vault, and the constants they share with it.

Each script is one atomic step on the server (see the key layout in
:mod:`livestack_nb.vault.redis`): recording a job once, appending a stream
entry only at its next seq, ending a stream, appending a status once, putting
a job on its queue once, and the fenced acknowledgement and heartbeat of the
queue (see :data:`FENCE`).
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "ADD_JOB",
    "APPEND",
    "END",
    "END_ID",
    "ENQUEUE",
    "FENCE",
    "GROUP",
    "MAX_ENTRY",
    "READ_PAGE",
    "STATUS",
    "TOUCH",
]

GROUP = "workers"
MAX_ENTRY = 16_384  # values per stream entry: bounds what a reader decodes to reach one value
READ_PAGE = 64  # entries per XRANGE when reading a stream back
END_ID = "1-0"  # the id of a stream's end marker: after every data id (0-N)

# KEYS: job hash, jobs zset, statuses stream. ARGV: job id, spec, parent, options, created, status.
# Recording a job twice (a worker preparing a job a notebook recorded) changes nothing.
ADD_JOB = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'parent', ARGV[3], 'options', ARGV[4],
           'created', ARGV[5], 'status', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'status', ARGV[6], 'time', ARGV[5])
return 1
"""

# A worker writes a job's outputs and statuses under a *fence*: the job's queue message
# must still be pending for that worker (its consumer name in the group's pending-entry
# list). A worker that stalled past its lease, whose message another worker took over,
# has every later write refused, so it cannot overwrite or add to the new owner's work.
# Fenced scripts get the queue key as their last KEY and (message id, consumer) in ARGV.
FENCE = f"""
local function fenced(queue, mid, consumer)
  if mid == '' then return false end
  local p = redis.pcall('XPENDING', queue, '{GROUP}', mid, mid, 1)
  if p.err then return true end  -- no queue: a server that lost its data
  return #p == 0 or p[1][2] ~= consumer
end
"""

# KEYS: data stream, seqs hash, ended hash, writers hash[, queue]. ARGV: stream id, seq0, n,
# maxlen, force, fence message id, fence consumer, field/value pairs.
# Returns {1, next} when appended, {0, next} when seq0 is not the next seq (nothing written),
# {-1, next} when the stream has ended, {-2, next} when fenced off.
#
# A shared stream (several processes append to it: a job's input fed from two
# cells, a named stream) passes force = 'w:<writer>': the entry goes at the
# stream's next seq whatever its own, its 's' field rewritten to match, and the
# writer's own count (KEYS[4]) makes a retried entry a no-op.
APPEND = (
    FENCE
    + """
local nxt = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if #KEYS > 4 and fenced(KEYS[5], ARGV[6], ARGV[7]) then return {-2, nxt} end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {-1, nxt} end
if string.sub(ARGV[5], 1, 2) == 'w:' then
  local wk = ARGV[1] .. '|' .. string.sub(ARGV[5], 3)
  local mine = tonumber(ARGV[2]) + tonumber(ARGV[3])
  if mine <= tonumber(redis.call('HGET', KEYS[4], wk) or '0') then return {1, nxt} end
  local fields = {unpack(ARGV, 8)}
  fields[2] = tostring(nxt)
  local stop = nxt + tonumber(ARGV[3])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], string.format('0-%d', stop), unpack(fields))
  redis.call('HSET', KEYS[2], ARGV[1], stop)
  redis.call('HSET', KEYS[4], wk, mine)
  return {1, stop}
end
local seq0 = tonumber(ARGV[2])
if seq0 < nxt or (seq0 > nxt and ARGV[5] ~= '1') then return {0, nxt} end
local stop = seq0 + tonumber(ARGV[3])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], string.format('0-%d', stop), unpack(ARGV, 8))
redis.call('HSET', KEYS[2], ARGV[1], stop)
return {1, stop}
"""
)

# KEYS: data stream, ended hash[, queue]. ARGV: stream id, error ('' for none), fence id, consumer.
END = (
    FENCE
    + """
if #KEYS > 2 and fenced(KEYS[3], ARGV[3], ARGV[4]) then return -2 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[1], '1-0', 'end', '1', 'error', ARGV[2])
return 1
"""
)

# KEYS: statuses stream, job hash[, queue]. ARGV: status, time, has detail ('1'/'0'), detail,
# token, fence id, consumer. A status is written once however often it is sent (a batch
# resent after a lost connection): its token is kept in the entry. A job ends once: an end
# status (completed, failed, cancelled) after the first is dropped, so two processes that
# end a job at once (a cancel from the caller, the worker completing it) leave one end.
STATUS = (
    FENCE
    + """
if #KEYS > 2 and fenced(KEYS[3], ARGV[6], ARGV[7]) then return -2 end
local ends = {completed=true, failed=true, cancelled=true}
if ends[ARGV[1]] and ends[redis.call('HGET', KEYS[2], 'status') or ''] then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local f = last[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'k' and f[i + 1] == ARGV[5] then return 0 end
  end
end
local fields = {'status', ARGV[1], 'time', ARGV[2]}
if ARGV[3] == '1' then
  fields[#fields + 1] = 'detail'
  fields[#fields + 1] = ARGV[4]
end
fields[#fields + 1] = 'k'
fields[#fields + 1] = ARGV[5]
redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HSET', KEYS[2], 'status', ARGV[1])
return 1
"""
)

# KEYS: job hash, queue. ARGV: job id. A job goes on its queue once, however often it is sent.
ENQUEUE = """
if redis.call('HSETNX', KEYS[1], 'queued', '1') == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return 1
"""

# KEYS: queue. ARGV: consumer, message ids. Acknowledges those still pending for the consumer.
ACK = f"""
local n = 0
for i = 2, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], '{GROUP}', ARGV[i], ARGV[i], 1)
  if not p.err and #p == 1 and p[1][2] == ARGV[1] then
    n = n + redis.call('XACK', KEYS[1], '{GROUP}', ARGV[i])
  end
end
return n
"""

# KEYS: queue. ARGV: consumer, message ids. Refreshes the messages still pending for the
# consumer (their idle time back to 0) and returns those that are not: taken over by
# another worker after this one went silent, or acknowledged by it.
TOUCH = f"""
local lost = {{}}
for i = 2, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], '{GROUP}', ARGV[i], ARGV[i], 1)
  if not p.err and #p == 1 and p[1][2] == ARGV[1] then
    redis.call('XCLAIM', KEYS[1], '{GROUP}', ARGV[1], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
