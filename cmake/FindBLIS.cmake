# Debian's libblis-dev ships no pkg-config file; the OpenMP build keeps its
# header under a multiarch subdirectory, so look there before the generic one.
include(FindPackageHandleStandardArgs)
find_path(BLIS_INCLUDE_DIR blis.h
  PATHS /usr/include/x86_64-linux-gnu/blis-openmp /usr/include/blis-openmp
        /usr/include/x86_64-linux-gnu /usr/include/blis /usr/include
  NO_DEFAULT_PATH)
find_library(BLIS_LIBRARY NAMES blis
  PATHS /usr/lib/x86_64-linux-gnu/blis-openmp /usr/lib/x86_64-linux-gnu /usr/lib)
find_package_handle_standard_args(BLIS REQUIRED_VARS BLIS_LIBRARY BLIS_INCLUDE_DIR)
if(BLIS_FOUND AND NOT TARGET BLIS::BLIS)
  add_library(BLIS::BLIS UNKNOWN IMPORTED)
  set_target_properties(BLIS::BLIS PROPERTIES
    IMPORTED_LOCATION "${BLIS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${BLIS_INCLUDE_DIR}")
endif()
mark_as_advanced(BLIS_INCLUDE_DIR BLIS_LIBRARY)
