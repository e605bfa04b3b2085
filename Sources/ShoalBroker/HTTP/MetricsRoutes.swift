import HTTPTypes
import Hummingbird
import NIOCore
import ShoalAPI

/// `GET /metrics`: the broker's Prometheus exposition (see ``BrokerMetrics``), open like every
/// read; and a middleware that counts and times every API request by route template.
///
/// Added to the router first, so the middleware sees every answer (errors included, as the
/// error middleware turned them into responses) and `/metrics` needs no token.
struct MetricsRoutes<Operations: BrokerOperations>: Sendable {
    let operations: Operations
    let metrics: BrokerMetrics

    init(operations: Operations) {
        self.operations = operations
        // A stand-in for the broker (tests) has none: the endpoint then counts the API only.
        self.metrics = operations.metrics ?? BrokerMetrics()
    }

    func add(to router: Router<BasicRequestContext>) {
        router.add(middleware: APIMetricsMiddleware(metrics: metrics))
        let operations = operations
        let metrics = metrics
        router.get("/metrics") { _, _ in
            metrics.refresh(
                leases: try await operations.leases(includingFinal: false),
                services: try await operations.services().map(\.name),
                pool: try? await operations.pool())
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
    }
}

/// Counts and times each API request: method, route template (`/v1/leases/{id}`; `unmatched` for
/// a 404 without a route, so a scan cannot make new series), status.
struct APIMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: BrokerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: Int(response.status.code), since: start)
            return response
        } catch {
            record(request, context, status: Int((error as? any HTTPResponseError)?.status.code ?? 500), since: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        metrics.apiRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status,
                           duration: ContinuousClock.now - start)
    }
}

extension BrokerOperations {
    /// Stand-ins for the broker have no metrics of their own.
    public var metrics: BrokerMetrics? { nil }
}
