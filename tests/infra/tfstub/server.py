"""Schema-only stand-in for hashicorp/google: plugin protocol 6 over gRPC, never touching a cloud.

Started by Terraform through the launcher in the filesystem mirror (see tests/infra/tfstub/
provider.py). It serves the schema extracted from cdktn-provider-google, plans computed
attributes as unknown, reads resources back unchanged, fills data sources with fixed stand-in
values, and refuses to apply or import. Usage: server.py <schema.json> <generated-stubs dir>.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent import futures
from typing import Any

import grpc

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
REFUSAL = "schema-only stand-in provider (tests/infra/tfstub): it plans offline and never changes a cloud"


def main() -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("This binary is a Terraform plugin; Terraform starts it.", file=sys.stderr)
        return 1
    schema_path, gen_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, gen_dir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tfplugin6_pb2 as pb
    import tfplugin6_pb2_grpc as pb_grpc
    import values

    with open(schema_path) as handle:
        schema: dict[str, Any] = json.load(handle)
    resources: dict[str, Any] = schema["resource_schemas"]
    data_sources: dict[str, Any] = schema["data_source_schemas"]
    provider_config: dict[str, Any] = {}

    def block_pb(block: dict[str, Any]) -> Any:
        out = pb.Schema.Block()
        for name in sorted(block.get("attributes", {})):
            attr = block["attributes"][name]
            out.attributes.append(
                pb.Schema.Attribute(
                    name=name,
                    type=json.dumps(attr["type"]).encode(),
                    required=bool(attr.get("required")),
                    optional=bool(attr.get("optional")),
                    computed=bool(attr.get("computed")),
                )
            )
        nesting = {"single": 1, "list": 2, "set": 3, "map": 4}
        for name in sorted(block.get("block_types", {})):
            spec = block["block_types"][name]
            out.block_types.append(
                pb.Schema.NestedBlock(
                    type_name=name,
                    block=block_pb(spec["block"]),
                    nesting=nesting[spec["nesting_mode"]],
                    min_items=spec.get("min_items", 0),
                    max_items=spec.get("max_items", 0),
                )
            )
        return out

    def schema_pb(entry: dict[str, Any]) -> Any:
        return pb.Schema(version=entry.get("version", 0), block=block_pb(entry["block"]))

    def dyn(value: Any) -> Any:
        return pb.DynamicValue(msgpack=values.encode(value))

    def error(summary: str, detail: str = "") -> Any:
        return pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail)

    capabilities = pb.ServerCapabilities(plan_destroy=True)
    cached: dict[str, Any] = {}

    class Provider(pb_grpc.ProviderServicer):
        def GetMetadata(self, request: Any, context: Any) -> Any:
            return pb.GetMetadata.Response(
                server_capabilities=capabilities,
                resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in sorted(resources)],
                data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in sorted(data_sources)],
            )

        def GetProviderSchema(self, request: Any, context: Any) -> Any:
            if "full" not in cached:
                response = pb.GetProviderSchema.Response(
                    provider=schema_pb(schema["provider"]), server_capabilities=capabilities
                )
                for name, entry in resources.items():
                    response.resource_schemas[name].CopyFrom(schema_pb(entry))
                for name, entry in data_sources.items():
                    response.data_source_schemas[name].CopyFrom(schema_pb(entry))
                cached["full"] = response
            return cached["full"]

        def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateProviderConfig.Response()

        def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateResourceConfig.Response()

        def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateDataResourceConfig.Response()

        def ConfigureProvider(self, request: Any, context: Any) -> Any:
            provider_config.update(values.decode(request.config.msgpack) or {})
            return pb.ConfigureProvider.Response()

        def UpgradeResourceState(self, request: Any, context: Any) -> Any:
            block = resources[request.type_name]["block"]
            state = values.normalize(block, json.loads(request.raw_state.json or b"null"))
            return pb.UpgradeResourceState.Response(upgraded_state=dyn(state))

        def ReadResource(self, request: Any, context: Any) -> Any:
            # No cloud to read from: the stored state is the truth.
            return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

        def PlanResourceChange(self, request: Any, context: Any) -> Any:
            block = resources[request.type_name]["block"]
            planned = values.plan(block, values.decode(request.proposed_new_state.msgpack))
            return pb.PlanResourceChange.Response(planned_state=dyn(planned), planned_private=request.prior_private)

        def ApplyResourceChange(self, request: Any, context: Any) -> Any:
            return pb.ApplyResourceChange.Response(
                new_state=request.prior_state, diagnostics=[error("apply refused", REFUSAL)]
            )

        def ImportResourceState(self, request: Any, context: Any) -> Any:
            return pb.ImportResourceState.Response(diagnostics=[error("import refused", REFUSAL)])

        def ReadDataSource(self, request: Any, context: Any) -> Any:
            config = values.decode(request.config.msgpack)
            derived = {"project_id": config.get("project_id") or provider_config.get("project") or ""}
            derived["name"] = derived["project_id"]
            if request.type_name == "google_project":
                derived["id"] = f"projects/{derived['project_id']}"
            block = data_sources[request.type_name]["block"]
            return pb.ReadDataSource.Response(state=dyn(values.fill(block, config, derived)))

        def GetFunctions(self, request: Any, context: Any) -> Any:
            return pb.GetFunctions.Response()

        def StopProvider(self, request: Any, context: Any) -> Any:
            return pb.StopProvider.Response()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_ProviderServicer_to_server(Provider(), server)
    stopped = threading.Event()

    def shutdown(request: bytes, context: Any) -> bytes:
        stopped.set()
        return b""

    # go-plugin's controller (plugin.GRPCController/Shutdown takes and returns Empty).
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "plugin.GRPCController",
                {
                    "Shutdown": grpc.unary_unary_rpc_method_handler(
                        shutdown, request_deserializer=lambda b: b, response_serializer=lambda b: b
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"1|6|tcp|127.0.0.1:{port}|grpc|", flush=True)
    stopped.wait()
    server.stop(grace=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
