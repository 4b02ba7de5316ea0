# Turns daemon/openapi.json into a C array (openapi.h), as sql/embed.cmake does the migrations.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
file(WRITE ${OUT}.tmp "/* generated from daemon/openapi.json by openapi_embed.cmake: do not edit */\n"
	"#include \"openapi.h\"\n\nconst char openapi_json[] = {${hex} 0x00};\n"
	"const size_t openapi_json_len = ${n};\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
