public import Hummingbird
public import NIOCore

/// The request context of the controller's routes: Hummingbird's basics plus the client's channel, through
/// which a route learns that its client has gone (see `ClientConnection`).
public struct FleetRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
