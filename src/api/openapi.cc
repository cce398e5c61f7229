#include "api/openapi.h"

namespace pdv::api {

std::string OpenApiDocument() {
  return R"json({"openapi":"3.0.3","info":{"title":"pdv","version":"1"},
"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"},"apiKey":{"type":"apiKey","in":"header","name":"X-API-Key"}},
"schemas":{"Erro":{"type":"object","properties":{"erro":{"type":"string"},"mensagem":{"type":"string"}}},
"Cliente":{"type":"object","properties":{"cliente_id":{"type":"string","format":"uuid"},"elegivel_promocao":{"type":"boolean"},
"motivo":{"type":"string","nullable":true,"enum":["INATIVO","SEM_OPT_IN","EM_CARENCIA"]},
"elegivel_a_partir_de":{"type":"string","format":"date-time","nullable":true},"status_clube":{"type":"string","enum":["ATIVO","INATIVO"]},
"opt_in_marketing":{"type":"boolean"},"primeiro_nome":{"type":"string"},"ticket_medio_estimado":{"type":"number"},
"origem_campanha":{"type":"string"},"atualizado_em":{"type":"string","format":"date-time"}}}}},
"security":[{"bearer":[]},{"apiKey":[]}],
"paths":{
"/v1/clientes/{cpf}":{"get":{"summary":"Club membership and eligibility by CPF","parameters":[{"name":"cpf","in":"path","required":true,"schema":{"type":"string","example":"123.456.789-09"}}],
"responses":{"200":{"description":"found","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Cliente"}}}},
"400":{"description":"invalid CPF"},"401":{"description":"no or unknown API key"},"403":{"description":"revoked API key"},
"404":{"description":"unknown customer"},"429":{"description":"rate limited (Retry-After)"},"503":{"description":"store unavailable"}}}},
"/cliente/{cliente_id}/status":{"get":{"summary":"The original platform's route","parameters":[{"name":"cliente_id","in":"path","required":true,"schema":{"type":"string"}}],
"responses":{"200":{"description":"status, or status CADASTRO INEXISTENTE"},"401":{"description":"no API key"},"403":{"description":"revoked"},"429":{"description":"rate limited"},"503":{"description":"unavailable"}}}},
"/health":{"get":{"security":[],"responses":{"200":{"description":"alive"}}}},
"/ready":{"get":{"security":[],"responses":{"200":{"description":"Redis reachable and data loaded"},"503":{"description":"not ready"}}}},
"/metrics":{"get":{"security":[],"responses":{"200":{"description":"Prometheus text"}}}},
"/openapi.json":{"get":{"security":[],"responses":{"200":{"description":"this document"}}}},
"/status":{"get":{"security":[],"responses":{"200":{"description":"the pipeline's status page (HTML)"}}}},
"/status.json":{"get":{"security":[],"responses":{"200":{"description":"each stage's position, lag, rate and health, and the measured freshness, as published by pdv monitor"}}}}}})json";
}

}  // namespace pdv::api
