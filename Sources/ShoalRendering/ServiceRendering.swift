import Foundation
import ShoalAPI
/// `shoal services`: each registered service's claim on the pool and what it holds.
///
/// ```text
/// SERVICE  FRONT-ENDS  MIN  MAX  PRIORITY  WEIGHT  HELD  WAITING  SHARE  BACKEND-S/1K REQ
/// a        a@fe-a        0    3         0       1     2        0      2              12.5
/// ```
///
/// SHARE is the service's weighted max-min fair share of the pool now; BACKEND-S/1K REQ its
/// back-end-seconds per 1 000 requests served since the broker started (`-` before any).
public func render(services: [ServiceView], width: Int? = nil) -> String {
    guard !services.isEmpty else { return "No services registered." }
    var table = TextTable(columns: [
        .init("SERVICE", truncatable: true), .init("FRONT-ENDS", truncatable: true),
        .init("MIN", alignment: .right), .init("MAX", alignment: .right), .init("PRIORITY", alignment: .right),
        .init("WEIGHT", alignment: .right), .init("HELD", alignment: .right), .init("WAITING", alignment: .right),
        .init("SHARE", alignment: .right), .init("BACKEND-S/1K REQ", alignment: .right),
    ])
    for service in services {
        table.append([
            service.name, service.frontends.isEmpty ? "-" : service.frontends.joined(separator: ", "),
            String(service.minBackends), String(service.maxBackends), String(service.priority),
            String(service.weight), String(service.held), String(service.waiting), String(service.fairShare),
            service.backendSecondsPerThousandRequests.map { String(format: "%.1f", $0) } ?? "-",
        ])
    }
    return table.render(width: width)
}
