# cmake -DOUT=file.cc -DNAMESPACE=ns -DFILES="a|b" -P embed.cmake
# Writes a .cc defining `std::string_view Embedded(std::string_view name)` that returns
# each file's bytes by its base name, so the binary needs no data files at run time.
set(body "#include <string_view>\n\nnamespace ${NAMESPACE} {\n\nstd::string_view Embedded(std::string_view name) {\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(base ${f} NAME)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  string(APPEND body "  if (name == \"${base}\") {\n    static constexpr char kData[] = \"${escaped}\";\n    return std::string_view(kData, sizeof(kData) - 1);\n  }\n")
endforeach()
string(APPEND body "  return {};\n}\n\n}  // namespace ${NAMESPACE}\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
