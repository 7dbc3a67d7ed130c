# These interface packages are the subsets this project needs, built from the published .msg
# definitions for machines without ROS from apt (tools/build_interfaces.sh). A workspace
# build must never put such a subset in front of a complete package that is already
# installed (ros-jazzy-vision-msgs from apt has many more messages): refuse, and say how to
# build the rest of the workspace. tools/build_interfaces.sh installs into the venv itself,
# which is not "another" prefix.
string(REPLACE ":" ";" _prefixes "$ENV{AMENT_PREFIX_PATH}")
foreach(_prefix ${_prefixes})
  get_filename_component(_prefix "${_prefix}" REALPATH)
  get_filename_component(_own "${CMAKE_INSTALL_PREFIX}" REALPATH)
  if(NOT _prefix STREQUAL _own AND EXISTS "${_prefix}/share/${PROJECT_NAME}/package.xml")
    message(FATAL_ERROR "${PROJECT_NAME} is already installed in ${_prefix} (a ROS install); "
      "this subset would shadow it. Build without it: colcon build --packages-skip "
      "${PROJECT_NAME} (interfaces/ is only for machines without ROS from apt)")
  endif()
endforeach()
