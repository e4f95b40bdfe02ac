# msr-rec is built with cmake-js (see scripts/build-native.mjs and CMakeLists.txt): llama.cpp's
# own build is CMake, and it must be compiled from node-llama-cpp's bundled source, statically and
# with hidden visibility. This file exists so that tools which only know node-gyp
# (`node-gyp rebuild`, `npm rebuild` in some setups) run that same cmake-js build instead of
# compiling a different addon: its single target has no sources, only an action that delegates.
{
  "targets": [
    {
      "target_name": "msr_rec_cmake",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt", "scripts/build-native.mjs"],
          "outputs": ["build/Release/msr_rec.node"],
          "action": ["node", "scripts/build-native.mjs"]
        }
      ]
    }
  ]
}
