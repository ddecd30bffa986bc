# cmake -DGLUE=<stem>.js -DWEB_PRELUDE=<file> -DNODE_PRELUDE=<file>
#       -DOUTPUT=<stem>.node.js -P node_glue.cmake
#
# Writes the Node variant of a glue file linked with
# `--extern-pre-js WEB_PRELUDE`: the same glue with NODE_PRELUDE in front
# instead. em++ 3.1.6 applies --extern-pre-js by plain concatenation after
# optimizing (emcc.py), so OUTPUT is byte for byte what a link with
# `--extern-pre-js NODE_PRELUDE` writes, and both variants share one link and
# one .wasm.
foreach(var GLUE WEB_PRELUDE NODE_PRELUDE OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "node_glue.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ ${GLUE} glue)
file(READ ${WEB_PRELUDE} web)
file(READ ${NODE_PRELUDE} node)
string(LENGTH "${web}" web_length)
string(SUBSTRING "${glue}" 0 ${web_length} head)
if(NOT head STREQUAL web)
  message(FATAL_ERROR "node_glue.cmake: ${GLUE} does not start with ${WEB_PRELUDE}")
endif()
string(SUBSTRING "${glue}" ${web_length} -1 body)
file(WRITE ${OUTPUT}.tmp "${node}${body}")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
