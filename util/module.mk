# util: small shared pieces (errors, buffers, logging, strings, clock,
# WebSocket framing). Depends on nothing in this tree.
UTIL_SRCS += \
	util/err.c \
	util/buf.c \
	util/log.c \
	util/str.c \
	util/clock.c \
	util/ws.c
