import HTTPTypes
import Hummingbird
import NIOCore
import ShoalAPI

/// The status page (`GET /` and `GET /status`) and the history it charts (`GET /v1/history`).
/// Reads, so open like the rest of the API's reads; the page itself only reads the API.
struct StatusPageRoutes<Operations: BrokerOperations>: Sendable {
    let operations: Operations

    func add(to router: Router<BasicRequestContext>) {
        let operations = operations
        router.get("/") { _, _ in Self.page() }
        router.get("/status") { _, _ in Self.page() }
        router.get("\(BrokerAPI.prefix)/history") { _, _ in
            try JSONResponse.make(try await operations.history())
        }
    }

    static func page() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                // Everything is inline and the page talks only to this broker: nothing else may load.
                .contentSecurityPolicy:
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                    + "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                .xContentTypeOptions: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: StatusPage.html))
        )
    }
}
