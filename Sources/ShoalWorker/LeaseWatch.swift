import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalClient

/// The worker asks the broker, over its HTTP API, whether its lease still stands, and stops
/// serving once it does not. It is what stops a **stranded** worker: one whose pool's master
/// pvmd died (a host's pvmd outlives its master until it tries to reach it, minutes later) or
/// whose broker was replaced by a standby — its lease was revoked, no front-end routes to it,
/// and no PVM message can reach it any more. A broker that does not answer is no verdict: the
/// worker goes on serving (a broker restart must not stop the data path). The broker counts each
/// question as a sign of the worker's life, beside its PVM load reports.
final class LeaseWatch: Service {
    /// What one answer means for the worker.
    enum Verdict: Equatable {
        case serve
        case stop(reason: String)

        static func of(_ answer: Result<LeaseView, BrokerClientError>, lease: String) -> Verdict {
            switch answer {
            case .success(let view) where view.state.isFinal:
                .stop(reason: "lease \(lease) is \(view.state.rawValue)\(view.revocation.map { " (\($0.rawValue))" } ?? "")")
            case .success:
                .serve
            case .failure(let error):
                if case .status(404, _) = error.kind { .stop(reason: "the broker does not know lease \(lease)") } else { .serve }
            }
        }
    }

    private let lease: String
    private let broker: BrokerClient
    private let interval: Duration
    private let logger: Logger

    /// - Parameter brokerURLs: every broker's API (a standby that became active answers too).
    init(lease: String, brokerURLs: [String], caFile: String? = nil, interval: Duration = .seconds(1), logger: Logger) throws {
        self.lease = lease
        self.broker = try BrokerClient(baseURL: brokerURLs.joined(separator: ","), token: nil, timeout: .seconds(2), caFile: caFile)
        self.interval = interval
        self.logger = logger
    }

    /// Returns (ending the worker, which drains) once the lease no longer stands.
    func run() async {
        await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: self.interval)) != nil {
                guard case .stop(let reason) = await self.ask() else { continue }
                self.logger.notice("stranded: the worker stops", metadata: ["reason": "\(reason)"])
                return
            }
        }
        await broker.close()
    }

    /// The active broker's answer; none (no broker answers) means the worker serves on.
    private func ask() async -> Verdict {
        do {
            return Verdict.of(.success(try await broker.workerCheck(lease: lease)), lease: lease)
        } catch let error as BrokerClientError {
            return Verdict.of(.failure(error), lease: lease)
        } catch {
            return .serve  // Cancelled.
        }
    }
}
