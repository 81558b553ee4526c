{
  "variables": {
    "unigap_common_cflags": ["-std=c++17", "-O3", "-fPIC", "-Wall", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "unigap_scalar",
      "type": "static_library",
      "include_dirs": ["native/include", "native/cpu"],
      "sources": ["<!@(node scripts/gyp-sources.cjs scalar)"],
      "cflags_cc": ["<@(unigap_common_cflags)", "-fno-tree-vectorize", "-fno-tree-slp-vectorize"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "unigap_avx2",
      "type": "static_library",
      "include_dirs": ["native/include", "native/cpu"],
      "sources": ["<!@(node scripts/gyp-sources.cjs avx2)"],
      "cflags_cc": ["<@(unigap_common_cflags)", "-mavx2", "-mfma", "-mf16c"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "unigap_avx512",
      "type": "static_library",
      "include_dirs": ["native/include", "native/cpu"],
      "sources": ["<!@(node scripts/gyp-sources.cjs avx512)"],
      "cflags_cc": ["<@(unigap_common_cflags)", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "unigap",
      "dependencies": ["unigap_scalar", "unigap_avx2", "unigap_avx512"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include", "native/cpu", "native/napi"],
      "sources": ["<!@(node scripts/gyp-sources.cjs core)", "<!@(node scripts/gyp-sources.cjs napi)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NDEBUG", "UNIGAP_VERSION=\"0.1.0\""],
      "cflags_cc": ["<@(unigap_common_cflags)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lpthread"]
    }
  ]
}
