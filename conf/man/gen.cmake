# gen.cmake: a man page from its template: @VERSION@ and, on a line of its own, @CONFIG_KEYS@
# (the key table, printed by `callrouted --print-config-man`, so the page cannot drift from it).
cmake_minimum_required(VERSION 3.16)
# cmake -DBIN=callrouted -DIN=page.in -DOUT=page -DVERSION=x.y.z -P gen.cmake
file(READ "${IN}" page)
if(page MATCHES "@CONFIG_KEYS@")
	execute_process(COMMAND "${BIN}" --print-config-man OUTPUT_VARIABLE keys
		RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0 OR keys STREQUAL "")
		message(FATAL_ERROR "gen.cmake: ${BIN} --print-config-man failed (${rc})")
	endif()
	string(REPLACE "@CONFIG_KEYS@\n" "${keys}" page "${page}")
endif()
string(REPLACE "@VERSION@" "${VERSION}" page "${page}")
file(WRITE "${OUT}.tmp" "${page}")
file(RENAME "${OUT}.tmp" "${OUT}")
# installed compressed (Debian policy; man reads either): gzip -9n, no name or time stamp inside
execute_process(COMMAND gzip -9nc "${OUT}" OUTPUT_FILE "${OUT}.gz.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
	message(FATAL_ERROR "gen.cmake: gzip ${OUT} failed (${rc})")
endif()
file(RENAME "${OUT}.gz.tmp" "${OUT}.gz")
