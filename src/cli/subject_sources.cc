#include "cli/subject_sources.h"

namespace pdv::cli {

subject::Sources SubjectSources(const Config& config) {
  return {.oltp_url = *config.Get("oltp_url"),
          .warehouse_url = *config.Get("warehouse_url"),
          .redis_url = *config.Get("redis_url"),
          .cpf_key = config.Get("cpf_key").value_or(""),
          .erasure_key = config.Get("erasure_key").value_or(""),
          .erasure_register = config.Get("erasure_register").value_or("")};
}

}  // namespace pdv::cli
