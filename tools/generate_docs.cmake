# Run at build time (cmake -P) after regfs is linked: the man pages and shell completion from
# regfs's own command tables. -DREGFS=<binary> -DGO_MD2MAN=<go-md2man> -DOUT=<directory>:
# OUT/man1/*.1 (from OUT/md/*.md), OUT/completion/regfs (bash), OUT/completion/_regfs (zsh).
file(REMOVE_RECURSE ${OUT}/md ${OUT}/man1 ${OUT}/completion)
file(MAKE_DIRECTORY ${OUT}/man1 ${OUT}/completion)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "failed (${rc}): ${command}")
  endif()
endfunction()

run(${REGFS} --generate-man-markdown ${OUT}/md)
file(GLOB pages ${OUT}/md/*.1.md)
if(NOT pages)
  message(FATAL_ERROR "regfs --generate-man-markdown wrote no pages")
endif()
foreach(md IN LISTS pages)
  get_filename_component(name ${md} NAME_WLE)  # regfs-copy.1
  run(${GO_MD2MAN} -in ${md} -out ${OUT}/man1/${name})
endforeach()

foreach(shell bash zsh)
  if(shell STREQUAL "bash")
    set(file ${OUT}/completion/regfs)
  else()
    set(file ${OUT}/completion/_regfs)
  endif()
  execute_process(COMMAND ${REGFS} --generate-completion ${shell} OUTPUT_FILE ${file}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${REGFS} --generate-completion ${shell}")
  endif()
endforeach()
file(TOUCH ${OUT}/stamp)
