import NIOCore

/// The request in progress on a client connection, carried by
/// ``ClientConnectionStateMachine/State/exchanging(_:)``: what the client asked, where it stands
/// (``Stage``), the member it is counted against, and when it times out.
///
/// A class, changed in place: as a struct inside the state enum, every event copied it out and
/// back, retaining and releasing each of its references (+30 % relay CPU per 1 KB request in an
/// A/B run). One per connection, reused for each request (``restart(request:requestID:upstreamHead:startedAt:isReplayable:)``).
final class Exchange {
    /// How far the request has got towards a member.
    enum Stage {
        /// Admitted (or about to be asked for admission), no member yet: between two steps of
        /// one event, never across events.
        case choosingMember
        /// Waiting for a turn in the admission queue.
        case waitingForTurn(EventLoopPromise<Void>)
        /// A member is chosen; a new connection to it is being opened.
        case connecting
        /// On a member connection: the request and/or the answer are streaming.
        case relaying(UpstreamConnection)
    }

    var stage = Stage.choosingMember
    /// The client's head: what the answer must suit (version, keep-alive, `HEAD`), and log lines.
    var request: RequestReader.Head
    /// The client's `X-Request-Id`, or one the relay made (and passed on to the member).
    var requestID: String
    /// The head the member gets, as bytes (kept for a retry).
    var upstreamHead: ByteBuffer
    /// `NIODeadline.uptimeNanoseconds` when the head arrived, for the member's latency histogram.
    var startedAt: UInt64
    /// May be sent again after its member failed before answering (`GET`/`HEAD`, no body).
    var isReplayable: Bool
    /// When the current stage times out.
    var deadline: NIODeadline

    /// The member the request is counted against (``Member/endRequest()`` pending).
    var member: Member?
    /// An admission turn is held (``Admission/release()`` pending).
    var holdsAdmission = false
    /// Body bytes that arrived before a member connection was ready (an empty array allocates nothing).
    var buffered: [ByteBuffer] = []
    /// The client still waits for `100 Continue` before it sends the body.
    var expectsContinue: Bool
    /// The client's request is read to its end.
    var requestEnded = false
    /// ... and all of it went to the member.
    var requestSent = false
    /// The answer's head went to the client: from now on a failure can only cut the answer short.
    var responseStarted = false
    var responseStatus: UInt = 0
    /// This answer ends the connection (the client or the answer's framing says so, or the relay drains).
    var closesConnection = false
    /// Retries left: on another member, then on the local instance.
    var retriesLeft = 2
    /// A request that failed on a reused connection gets one fresh connection, not counted as a
    /// retry: the member most likely closed the idle connection just as it was reused.
    var staleRetryUsed = false
    var forceFreshConnection = false

    init(request: RequestReader.Head, requestID: String, upstreamHead: ByteBuffer, startedAt: UInt64,
         isReplayable: Bool, deadline: NIODeadline) {
        self.request = request
        self.requestID = requestID
        self.upstreamHead = upstreamHead
        self.startedAt = startedAt
        self.isReplayable = isReplayable
        self.deadline = deadline
        self.expectsContinue = request.expectsContinue
    }

    /// Made ready for the connection's next request: every field as `init` sets it.
    func restart(request: RequestReader.Head, requestID: String, upstreamHead: ByteBuffer, startedAt: UInt64, isReplayable: Bool) {
        stage = .choosingMember
        self.request = request
        self.requestID = requestID
        self.upstreamHead = upstreamHead
        self.startedAt = startedAt
        self.isReplayable = isReplayable
        deadline = .distantFuture
        member = nil
        holdsAdmission = false
        buffered = []
        expectsContinue = request.expectsContinue
        requestEnded = false
        requestSent = false
        responseStarted = false
        responseStatus = 0
        closesConnection = false
        retriesLeft = 2
        staleRetryUsed = false
        forceFreshConnection = false
    }

    /// The member connection carrying the request, once there is one.
    var upstream: UpstreamConnection? {
        if case .relaying(let connection) = stage { return connection }
        return nil
    }

    var admissionTicket: EventLoopPromise<Void>? {
        if case .waitingForTurn(let ticket) = stage { return ticket }
        return nil
    }
}
