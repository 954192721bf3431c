---@meta concurrent.futures
-- lua-language-server definitions of require "concurrent.futures": never
-- run, only read by the editor (.luarc.json at the repository's root puts
-- types/ on the library path; the rock ships this folder too). Every name
-- the module exports is annotated here; spec/rockspec_spec.lua checks it.

---@alias futures.return_when "FIRST_COMPLETED"|"FIRST_EXCEPTION"|"ALL_COMPLETED"
---@alias futures.start_method "spawn"|"fork"
---@alias futures.lib "base"|"package"|"table"|"string"|"math"|"utf8"|"coroutine"|"os"|"io"|"debug"
--- An array of futures, or a table whose keys are futures (`future_to_url`).
---@alias futures.FutureSet Future[]|table<Future, any>

---@class concurrent.futures
---@field _VERSION string the release, "0.2.0"
---@field FIRST_COMPLETED futures.return_when
---@field FIRST_EXCEPTION futures.return_when
---@field ALL_COMPLETED futures.return_when
local futures = {}

-- ---- options ----------------------------------------------------------

---@class futures.ThreadPoolOptions
---@field max_workers? integer default min(32, cpu_count() + 4)
---@field thread_name_prefix? string default "ThreadPoolExecutor-K"; workers are prefix_0, prefix_1, ...
---@field initializer? fun(...) run once in each worker state
---@field initargs? any[] the initializer's arguments
---@field libs? futures.lib[] standard libraries opened in each worker state (default all; base and package always)

---@class futures.ProcessPoolOptions
---@field max_workers? integer default cpu_count()
---@field initializer? fun(...) run once in each worker process
---@field initargs? any[] the initializer's arguments
---@field max_tasks_per_child? integer a worker leaves after that many tasks
---@field start_method? futures.start_method default "spawn"
---@field worker? string the worker executable (default: found beside the module)
---@field libs? futures.lib[] standard libraries opened in each worker state

---@class futures.MapOptions
---@field timeout? number seconds, counted from the call to map
---@field chunksize? integer tasks per queue entry, default 1
---@field progress? boolean|futures.ProgressOptions draw a progress bar (see futures.progress)

---@class futures.ShutdownOptions
---@field wait? boolean default true
---@field cancel_futures? boolean default false

---@class futures.WaitOptions
---@field timeout? number seconds
---@field return_when? futures.return_when default ALL_COMPLETED

---@class futures.ProgressOptions
---@field total? integer the number of items, when the wrapped value cannot tell
---@field desc? string a label before the bar
---@field file? file*|false where to draw (default io.stderr); false draws nothing

---@class futures.Stats
---@field queued integer
---@field running integer
---@field done integer
---@field failed integer
---@field cancelled integer
---@field workers integer
---@field busy integer

-- ---- executors --------------------------------------------------------

--- What every executor does: submit, map, shutdown, stats, `<close>`.
---@class Executor
local Executor = {}

--- Schedules fn(...) and returns its future.
---@param fn function a Lua function, or a C function reachable from package.loaded
---@param ... any copied into the worker
---@return Future
function Executor:submit(fn, ...) end

--- fn over the iterables (sequence tables or iterator functions), in input
--- order; a final table with a string key and no [1] is the options
--- table, and a key other than `timeout` or `chunksize` in it is an error.
---@param fn function
---@param ... table|function|futures.MapOptions iterables, then optionally the options
---@return MapIterator
function Executor:map(fn, ...) end

--- Stops accepting work; idempotent.
---@param wait? boolean|futures.ShutdownOptions default true
---@param cancel_futures? boolean default false
---@overload fun(self: Executor, opts: futures.ShutdownOptions)
function Executor:shutdown(wait, cancel_futures) end

--- Counts of the executor's tasks and workers.
---@return futures.Stats
function Executor:stats() end

---@class ThreadPoolExecutor: Executor
local ThreadPoolExecutor = {}

---@class ProcessPoolExecutor: Executor
local ProcessPoolExecutor = {}

--- A pool of threads, each with its own lua_State.
---@param opts? futures.ThreadPoolOptions
---@return ThreadPoolExecutor
---@overload fun(max_workers: integer): ThreadPoolExecutor
function futures.ThreadPoolExecutor(opts) end

--- A pool of worker processes.
---@param opts? futures.ProcessPoolOptions
---@return ProcessPoolExecutor
---@overload fun(max_workers: integer): ProcessPoolExecutor
function futures.ProcessPoolExecutor(opts) end

-- ---- futures ----------------------------------------------------------

---@class Future
local Future = {}

--- Every value the task returned; re-raises its error, or raises
--- CancelledError / TimeoutError.
---@param timeout? number seconds
---@return any ...
function Future:result(timeout) end

--- The task's error value, or nil.
---@param timeout? number seconds
---@return any
function Future:exception(timeout) end

--- The worker's traceback of a failed task, or nil.
---@return string?
function Future:traceback() end

--- Cancels a future that has not started; whether it is now cancelled.
---@return boolean
function Future:cancel() end

---@return boolean
function Future:cancelled() end

---@return boolean
function Future:running() end

---@return boolean
function Future:done() end

--- fn(future) runs in this state once the future is done.
---@param fn fun(f: Future)
function Future:add_done_callback(fn) end

--- Unbound futures only: false if it was cancelled, else it is now running.
---@return boolean
function Future:set_running_or_notify_cancel() end

--- Unbound futures only: finishes it with these values.
---@param ... any
function Future:set_result(...) end

--- Unbound futures only: finishes it with this error.
---@param err any
function Future:set_exception(err) end

--- An unbound future, completed by set_result / set_exception.
---@return Future
function futures.Future() end

-- ---- map iterators ----------------------------------------------------

--- `for i, ... in it do`: the index and every value fn returned.
---@class MapIterator
---@operator call: integer, any
local MapIterator = {}

--- The first result of each call, in order: {r1, r2, ..., n = N}.
---@return {n: integer, [integer]: any}
function MapIterator:collect() end

--- Cancels the calls that have not started (also `<close>`).
function MapIterator:close() end

-- ---- module functions -------------------------------------------------

--- Waits for the futures: two arrays, done and not done, in the order of fs.
---@param fs futures.FutureSet
---@param timeout? number|futures.WaitOptions
---@param return_when? futures.return_when
---@return Future[] done
---@return Future[] not_done
---@overload fun(fs: futures.FutureSet, opts: futures.WaitOptions): Future[], Future[]
function futures.wait(fs, timeout, return_when) end

--- Iterates the futures as they finish or are cancelled.
---@param fs futures.FutureSet
---@param timeout? number seconds, counted from the call
---@return fun(): Future?
function futures.as_completed(fs, timeout) end

--- Sleeps, running the done callbacks pending in this state.
---@param seconds number
function futures.sleep(seconds) end

--- Monotonic seconds.
---@return number
function futures.now() end

--- "MainThread" or the worker's name.
---@return string
function futures.thread_name() end

---@return integer
function futures.getpid() end

--- The number of online CPUs.
---@return integer
function futures.cpu_count() end

--- Runs the pending done callbacks without blocking; how many ran.
---@return integer
function futures.poll() end

--- A file descriptor readable while callbacks are pending in this state
--- (for luv, cqueues or copas loops); owned by the module.
---@return integer
function futures.notify_fd() end

--- Starts (path) or ends (false) a Chrome trace event file.
---@param path string|false
function futures.trace(path) end

--- Wraps a map iterator, an as_completed iterator or an array of futures,
--- yielding what it wraps while drawing a progress bar.
---@generic T
---@param it T
---@param opts? futures.ProgressOptions
---@return T
function futures.progress(it, opts) end

-- ---- shared values ----------------------------------------------------

--- A read-only value encoded once; each state decodes its own copy once.
---@class Shared
local Shared = {}

--- This state's copy (the same table on every call here).
---@return any
function Shared:get() end

---@param v any
---@return Shared
function futures.shared(v) end

-- ---- queues -----------------------------------------------------------

--- A queue between the states of one process; values are copied.
---@class Queue
local Queue = {}

---@param v any
---@param timeout? number
function Queue:put(v, timeout) end

---@param timeout? number
---@return any
function Queue:get(timeout) end

---@param v any
function Queue:put_nowait(v) end

---@return any
function Queue:get_nowait() end

---@return integer
function Queue:qsize() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

function Queue:task_done() end

function Queue:join() end

---@param immediate? boolean default false
function Queue:shutdown(immediate) end

--- `for v in q:iter() do`: ends at shutdown.
---@return fun(): any
function Queue:iter() end

---@param maxsize? integer 0 or absent: unbounded
---@return Queue
function futures.Queue(maxsize) end

-- ---- errors -----------------------------------------------------------

--- An error value: `tostring(e)` is "Type: message".
---@class futures.ErrorValue
---@field type string the class name
---@field message string

--- An error class: calling it makes an instance.
---@class futures.ErrorClass
---@field base futures.ErrorClass? the parent class
---@overload fun(message?: string|table): futures.ErrorValue
local ErrorClass = {}

--- Whether v is an instance of this class or of a descendant; never raises.
---@param v any
---@return boolean
function ErrorClass:is(v) end

---@type futures.ErrorClass
futures.Error = nil
---@type futures.ErrorClass
futures.TimeoutError = nil
---@type futures.ErrorClass
futures.CancelledError = nil
---@type futures.ErrorClass
futures.InvalidStateError = nil
---@type futures.ErrorClass
futures.RuntimeError = nil
---@type futures.ErrorClass
futures.TransferError = nil
---@type futures.ErrorClass
futures.DeadlockError = nil
---@type futures.ErrorClass
futures.BrokenExecutor = nil
---@type futures.ErrorClass
futures.BrokenThreadPool = nil
---@type futures.ErrorClass
futures.BrokenProcessPool = nil
---@type futures.ErrorClass
futures.QueueEmpty = nil
---@type futures.ErrorClass
futures.QueueFull = nil
---@type futures.ErrorClass
futures.QueueShutDown = nil

return futures
