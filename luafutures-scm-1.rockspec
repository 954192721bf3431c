rockspec_format = "3.0"
package = "luafutures"
version = "scm-1"
source = {
  url = "git+https://github.com/luafutures/luafutures.git",
}
description = {
  summary = "Python's concurrent.futures for Lua 5.4: thread pools, futures, wait, as_completed, map",
  detailed = [[
A C runtime runs thread pools whose every worker owns its own lua_State, so
Lua code runs truly in parallel; the module concurrent.futures gives submit,
map, wait, as_completed, futures with callbacks, timeouts and cancellation,
and turns provable deadlocks into errors.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_variables = {
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}
