import HTTPTypes
import Hummingbird
import NIOCore

/// The request context of `ccr web`'s routes: Hummingbird's basics plus the connection, so that
/// a handler can stop its work when the visitor leaves.
public struct WebRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The visitor's connection.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Runs `body`, cancelling it when the connection closes (the `ConnectionGateHandler` closes
    /// it when the client closes its side): a search nobody waits for stops (the store's reads
    /// honour cancellation) instead of holding a database connection.
    func untilClientLeaves<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let work = Task { try await body() }
        channel.closeFuture.whenComplete { _ in work.cancel() }
        return try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
    }
}

/// Headers on every response, errors and 404s included: `nosniff` so a caption text served as
/// text is never run as a script, and a Content-Security-Policy that allows only this site's own
/// script, styles and live feed (the pages have no inline script or style).
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // A route that does not exist (404) and the like: answered here, so they get the headers too.
            response = try error.response(from: request, context: context)
        }
        for field in SecurityHeaderFields.all { response.headers[field.name] = field.value }
        return response
    }
}

enum SecurityHeaderFields {
    static var all: HTTPFields {
        [
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Content-Security-Policy")!: contentSecurityPolicy,
            HTTPField.Name("Referrer-Policy")!: "same-origin",
        ]
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}
