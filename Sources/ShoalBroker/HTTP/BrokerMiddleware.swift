import HTTPTypes
import Hummingbird
import Logging
import ShoalAPI

/// Logs every request at debug, with the status it got.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        context.logger.debug(
            "HTTP request",
            metadata: [
                "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "status": .stringConvertible(response.status.code),
            ]
        )
        return response
    }
}

/// Turns every failure into an ``ErrorBody`` with the right status, so clients always get
/// `{"error": ...}`: refusals from the broker, Hummingbird's and NIO's errors (404, 413) and ours
/// (400, 401). Anything else is a bug here or in the broker: 500, with the error in the log.
struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as BrokerError {
            return try JSONResponse.make(ErrorBody(error: error.message), status: Self.status(for: error.code))
        } catch let error as HTTPError {
            let message = error.body ?? Self.defaultMessage(for: error.status, request: request)
            return try JSONResponse.make(ErrorBody(error: message), status: error.status, headers: error.headers)
        } catch let error as any HTTPResponseError {
            // E.g. NIOTooManyBytesError from collecting an oversize body: 413.
            let message = Self.defaultMessage(for: error.status, request: request)
            return try JSONResponse.make(ErrorBody(error: message), status: error.status)
        } catch {
            context.logger.error(
                "HTTP request failed",
                metadata: [
                    "method": .string(request.method.rawValue),
                    "path": .string(request.uri.path),
                    "error": .string(String(describing: error)),
                ]
            )
            return try JSONResponse.make(
                ErrorBody(error: "the broker failed to answer; the reason is in its log"), status: .internalServerError
            )
        }
    }

    static func status(for code: BrokerError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalid: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        }
    }

    static func defaultMessage(for status: HTTPResponse.Status, request: Request) -> String {
        switch status {
        case .notFound: "no such route: \(request.method.rawValue) \(request.uri.path)"
        case .contentTooLarge: "the request body is over \(BrokerAPI.maxBodyBytes) bytes"
        default: status.reasonPhrase
        }
    }
}

/// Every change (any method but GET and HEAD) needs `Authorization: Bearer <token>`; reads are
/// open because the API listens on loopback.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head else {
            return try await next(request, context)
        }
        guard let given = Self.bearerToken(in: request.headers) else {
            throw Self.unauthorized("this request changes the broker and needs `Authorization: Bearer <token>`")
        }
        guard BrokerToken.matches(given, token) else {
            throw Self.unauthorized("the bearer token is wrong")
        }
        return try await next(request, context)
    }

    /// The token from an `Authorization: Bearer ...` header; the scheme is case-insensitive.
    static func bearerToken(in headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1].drop { $0 == " " })
    }

    static func unauthorized(_ problem: String) -> HTTPError {
        HTTPError(
            .unauthorized,
            headers: [.wwwAuthenticate: "Bearer"],
            message: "\(problem); the token is in the file `\(BrokerAPI.tokenFileName)` in the broker's state directory, "
                + "or in SHOAL_TOKEN"
        )
    }
}
