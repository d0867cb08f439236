# Debian's libcaf-dev (CAF 0.17.6) ships no CMake package: wrap it in an
# INTERFACE target, giftcard::caf.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_library(CAF_IO_LIBRARY caf_io REQUIRED)
find_library(CAF_OPENSSL_LIBRARY caf_openssl REQUIRED)
add_library(giftcard_caf INTERFACE)
target_include_directories(giftcard_caf SYSTEM INTERFACE ${CAF_INCLUDE_DIR})
target_link_libraries(giftcard_caf INTERFACE
  ${CAF_OPENSSL_LIBRARY} ${CAF_IO_LIBRARY} ${CAF_CORE_LIBRARY} Threads::Threads)
add_library(giftcard::caf ALIAS giftcard_caf)
