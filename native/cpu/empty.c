/* Placeholder translation unit so an ISA library with no kernels yet still builds (binding.gyp). */
int unigap_empty_tu_placeholder(void) { return 0; }
