# dskit_require_package(<Package> <min-version> <debian-package>)
# Finds a dependency; if it is missing, stops configuration with a message that
# names the package to install.
macro(dskit_require_package _pkg _version _deb)
  if(NOT TARGET ${_pkg}::${_pkg} AND NOT ${_pkg}_FOUND)
    find_package(${_pkg} ${_version} CONFIG QUIET)
  endif()
  if(NOT ${_pkg}_FOUND AND NOT TARGET ${_pkg}::${_pkg} AND NOT TARGET ${_pkg})
    message(FATAL_ERROR "dskit needs ${_pkg} >= ${_version}, which was not found. "
                        "Install it (Debian/Ubuntu: apt-get install ${_deb}) or point CMAKE_PREFIX_PATH at it.")
  endif()
endmacro()

# Debian 12's xsimd 8.1 package exports a link to a target "xtl" that it neither
# ships nor depends on. xsimd is header-only and dskit does not use xtl, so an
# empty stand-in satisfies the link when the real xtl is absent.
macro(dskit_patch_xsimd_xtl)
  if(TARGET xsimd AND NOT TARGET xtl)
    find_package(xtl CONFIG QUIET)
    if(NOT TARGET xtl)
      add_library(xtl INTERFACE IMPORTED)
    endif()
  endif()
endmacro()
