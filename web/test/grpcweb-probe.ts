// Calls Switchyard with the official gRPC-Web runtime (npm grpc-web), the
// client most existing browser apps use. Its MethodDescriptor takes any
// serializer, so the protoc-gen-es types serve as the message codec.
import { GrpcWebClientBase, MethodDescriptor, MethodType, RpcError } from "grpc-web";
import { fromBinary, toBinary, type DescMessage, type MessageShape, create, type MessageInitShape } from "@bufbuild/protobuf";
import { GetTeamRequestSchema, GetTeamResponseSchema } from "../gen/teams/v1/teams_pb";
import { ListFeaturesRequestSchema, ListFeaturesResponseSchema } from "../gen/routeguide/v1/routeguide_pb";

function descriptor<I extends DescMessage, O extends DescMessage>(path: string, type: string, input: I, output: O) {
  return new MethodDescriptor<MessageShape<I>, MessageShape<O>>(
    path,
    type,
    Object as never,
    Object as never,
    (req: MessageShape<I>) => toBinary(input, req),
    (bytes: Uint8Array) => fromBinary(output, bytes),
  );
}

const getTeam = descriptor("/teams.v1.TeamsService/GetTeam", MethodType.UNARY, GetTeamRequestSchema, GetTeamResponseSchema);
const listFeatures = descriptor("/routeguide.v1.RouteGuideService/ListFeatures", MethodType.SERVER_STREAMING, ListFeaturesRequestSchema, ListFeaturesResponseSchema);

function unary<I extends DescMessage>(client: GrpcWebClientBase, url: string, schema: I, init: MessageInitShape<I>) {
  return new Promise<{ nickname?: string; code?: number; message?: string }>((resolve) => {
    client.rpcCall(url, create(schema, init) as never, {}, getTeam as never, (err: RpcError, res: { nickname: string }) => {
      if (err) resolve({ code: err.code, message: err.message });
      else resolve({ nickname: res.nickname });
    });
  });
}

export async function runProbe(api: string, format: "text" | "binary") {
  const client = new GrpcWebClientBase({ format });
  const found = await unary(client, `${api}/teams.v1.TeamsService/GetTeam`, GetTeamRequestSchema, { city: "Seattle" });
  const missing = await unary(client, `${api}/teams.v1.TeamsService/GetTeam`, GetTeamRequestSchema, { city: "Atlantis" });
  const features = await new Promise<{ count: number; named: number; status?: number; error?: string }>((resolve) => {
    let count = 0;
    let named = 0;
    const req = create(ListFeaturesRequestSchema, {
      lo: { latitude: 400000000, longitude: -750000000 },
      hi: { latitude: 420000000, longitude: -730000000 },
    });
    const stream = client.serverStreaming(`${api}/routeguide.v1.RouteGuideService/ListFeatures`, req, {}, listFeatures);
    stream.on("data", (f) => {
      count++;
      if (f.name) named++;
    });
    stream.on("error", (err) => resolve({ count, named, error: `${err.code}: ${err.message}` }));
    stream.on("end", () => resolve({ count, named }));
  });
  return { found, missing, features };
}

(window as unknown as { runProbe: typeof runProbe }).runProbe = runProbe;
