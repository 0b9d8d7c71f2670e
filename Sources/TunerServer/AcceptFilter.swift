import NIOCore

/// On the listening channel, ahead of NIO's acceptor: closes a connection from an address that
/// `TunerAdmission.refusalAtAccept` refuses (locked out, or budgets spent) as soon as it is
/// accepted, before it gets its options, a pipeline, a session or a place among the event loop's
/// sockets, and without reading a byte.
///
/// An attacker reconnects the moment it is closed. Refused later, in the tuner's handler, each
/// reconnection cost a `TunerSession`, two timers and a read; one whose captions were still
/// within one budget cost a program, a tuner row and archive files for its first record before
/// the next budget closed it. Here it costs the accept and the close.
final class AcceptFilter: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let admission: TunerAdmission
    private let metrics: ServerMetrics
    /// Load balancers (`[server] proxy_protocol_from`): their connections carry many tuners, whose
    /// own addresses are known only from the PROXY header, so they are judged after it.
    private let proxies: AddressSet

    init(admission: TunerAdmission, metrics: ServerMetrics, proxies: AddressSet = AddressSet()) {
        self.admission = admission
        self.metrics = metrics
        self.proxies = proxies
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let accepted = unwrapInboundIn(data)
        guard let address = accepted.remoteAddress?.ipAddress, !proxies.contains(address),
              let refusal = admission.refusalAtAccept(address, nowMs: wallClockMilliseconds()) else {
            context.fireChannelRead(data)
            return
        }
        metrics.update {
            $0.connectionsTotal += 1
            $0.refusedByReason[refusal.rawValue, default: 0] += 1
        }
        accepted.close(promise: nil)
    }
}
