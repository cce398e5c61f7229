#pragma once

// The API's OpenAPI 3 document (served at /openapi.json): its routes, answers and
// schemas, written out by hand next to the code that answers them.

#include <string>

namespace pdv::api {

// The document as JSON text; pure.
std::string OpenApiDocument();

}  // namespace pdv::api
