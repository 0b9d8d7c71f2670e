import NIOCore

/// A minimal HTTP/1.x responder for Prometheus: `GET /metrics` returns the counters, anything
/// else 404. One request per connection (Connection: close), request head capped at 8 KB; a
/// full HTTP stack would be more code than this endpoint needs.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let render: @Sendable () -> String
    private var head: [UInt8] = []
    private var answered = false

    init(render: @escaping @Sendable () -> String) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var buffer = unwrapInboundIn(data)
        head += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard let end = findHeadEnd() else {
            if head.count > 8192 { respond(context: context, status: "431 Request Header Fields Too Large", body: "request head too large\n") }
            return
        }
        let requestLine = String(decoding: head[..<end].prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2, parts[0] == "GET" || parts[0] == "HEAD" else {
            respond(context: context, status: "405 Method Not Allowed", body: "only GET\n")
            return
        }
        let path = parts[1].split(separator: "?").first.map(String.init) ?? ""
        if path == "/metrics" {
            respond(context: context, status: "200 OK", body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8",
                    headOnly: parts[0] == "HEAD")
        } else {
            respond(context: context, status: "404 Not Found", body: "try /metrics\n")
        }
    }

    private func findHeadEnd() -> Int? {
        guard head.count >= 4 else { return nil }
        for i in 0...(head.count - 4) where head[i] == 0x0D && head[i + 1] == 0x0A && head[i + 2] == 0x0D && head[i + 3] == 0x0A {
            return i
        }
        return nil
    }

    private func respond(context: ChannelHandlerContext, status: String, body: String,
                         contentType: String = "text/plain; charset=utf-8", headOnly: Bool = false) {
        answered = true
        let bodyBytes = Array(body.utf8)
        let header = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\nConnection: close\r\n\r\n"
        var out = context.channel.allocator.buffer(capacity: header.utf8.count + bodyBytes.count)
        out.writeString(header)
        if !headOnly { out.writeBytes(bodyBytes) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
    }
}
