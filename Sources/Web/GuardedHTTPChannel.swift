import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 connection with `ccr web`'s guards around it: the `ConnectionGate` in
/// front of everything (raw bytes), the `ConnectionDeadlines` right after HTTP decoding.
struct GuardedHTTPChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let inner: HTTP1Channel
    let gate: ConnectionGate
    let logger: Logger

    init(responder: @escaping HTTPChannelHandler.Responder, gate: ConnectionGate, timeouts: ConnectionDeadlines.Timeouts, logger: Logger) {
        inner = HTTP1Channel(responder: responder,
                             configuration: .init(additionalChannelHandlers: [ConnectionDeadlines(timeouts: timeouts)]))
        self.gate = gate
        self.logger = logger
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionGateHandler(gate: gate, logger: self.logger))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with `ccr web`'s connection cap and timeouts.
    static func guarded(gate: ConnectionGate, limits: WebLimits, logger: Logger) -> HTTPServerBuilder {
        let timeouts = ConnectionDeadlines.Timeouts(header: .fromSeconds(limits.headerTimeoutSeconds),
                                                    idle: .fromSeconds(limits.idleTimeoutSeconds),
                                                    write: .fromSeconds(limits.writeTimeoutSeconds))
        return HTTPServerBuilder { responder in
            GuardedHTTPChannel(responder: responder, gate: gate, timeouts: timeouts, logger: logger)
        }
    }
}

extension TimeAmount {
    static func fromSeconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64((value * 1e9).rounded())) }
}
