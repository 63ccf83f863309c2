# Compiler policy for the project's own targets: strict warnings, optional sanitizers.
# Generated code (protobuf) does not get the warning flags.

add_library(appliance_warnings INTERFACE)
target_compile_options(appliance_warnings INTERFACE -Wall -Wextra -Werror)

if(APPLIANCE_SANITIZE OR APPLIANCE_FUZZERS)
  # Applied to everything we compile, including generated code, so that ASan sees all our memory.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(APPLIANCE_FUZZERS)
  # Coverage instrumentation for the libraries the fuzzers exercise (libFuzzer's main is linked
  # only into the *_fuzzer binaries); without it the fuzzer is blind inside libattest.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# appliance_add_warnings(target...): enable the project's warning flags on our own targets.
function(appliance_add_warnings)
  foreach(t IN LISTS ARGN)
    target_link_libraries(${t} PRIVATE appliance_warnings)
  endforeach()
endfunction()
