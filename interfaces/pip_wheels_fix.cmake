# The ROS 2 PyPI wheels export CMake targets whose include path names the wheel builder's
# /opt/python/... interpreter, which does not exist here. Drop those entries and point at
# this interpreter's headers instead. A no-op on a ROS install from apt.
find_package(Python3 COMPONENTS Interpreter Development NumPy)
get_property(_targets DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_t ${_targets})
  get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
  if(_inc)
    list(FILTER _inc EXCLUDE REGEX "^/opt/python/")
    list(APPEND _inc ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
    set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
  endif()
endforeach()
