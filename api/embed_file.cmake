# Turns one file into a C++ source that returns its bytes, run at build time
# (api/CMakeLists.txt, giftcard_embed):
#   cmake -DINPUT=api/admin/app.js -DOUTPUT=admin_page_js.cc -DFUNCTION=admin_page_js
#         -DHEADER=api/admin_page.h -P embed_file.cmake
# The generated file defines `std::string_view giftcard::FUNCTION()` over a
# static array of the file's bytes: no string literal, so no limit on its
# length and no escaping of what the file holds.
foreach(var INPUT OUTPUT FUNCTION HEADER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_file.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
if(hex_length EQUAL 0)
  message(FATAL_ERROR "embed_file.cmake: ${INPUT} is empty")
endif()
math(EXPR size "${hex_length} / 2")
# 0xNN, for each byte, 16 to a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 sixteen)
string(REGEX REPLACE "(${sixteen})" "\\1\n    " bytes "${bytes}")

get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}"
"// Generated from ${name} by api/embed_file.cmake at build time: do not edit.
#include \"${HEADER}\"

namespace giftcard {
namespace {

const unsigned char kBytes[${size}] = {
    ${bytes}
};

}  // namespace

std::string_view ${FUNCTION}() {
  return {reinterpret_cast<const char*>(kBytes), sizeof kBytes};
}

}  // namespace giftcard
")
