#include "api/status_page.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <string_view>

namespace pdv::api {
namespace {

// What a CSP hash source names: base64 of the SHA-256 of the element's text, exactly
// as it stands between its tags.
std::string Sha256Source(std::string_view page, std::string_view open, std::string_view close) {
  size_t start = page.find(open);
  size_t end = start == std::string_view::npos ? start : page.find(close, start);
  if (end == std::string_view::npos) return "'none'";  // no such element: nothing allowed
  std::string_view text = page.substr(start + open.size(), end - start - open.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string b64(4 * ((SHA256_DIGEST_LENGTH + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), digest, SHA256_DIGEST_LENGTH);
  return "'sha256-" + b64 + "'";
}

}  // namespace

std::string StatusPageContentSecurityPolicy() {
  std::string_view page = kStatusPageHtml;
  return "default-src 'none'; script-src " + Sha256Source(page, "<script>", "</script>") +
         "; style-src " + Sha256Source(page, "<style>", "</style>") +
         "; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'";
}

}  // namespace pdv::api
