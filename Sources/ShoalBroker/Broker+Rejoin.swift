import Logging
import ShoalCore

/// Bringing lost pool hosts back (``PoolHealth`` decides when): a host taken for dead is deleted
/// from the virtual machine, and a host not in it is added again with `pvm_addhosts`, as at
/// start; once PVM has it, it takes leases again. Both run as handed-off work (``WorkQueue``):
/// `pvm_addhosts` may take long, and the tick does not wait for it.
extension Broker {
    func remove(_ host: String) async {
        if let failure = await launcher.remove(hosts: [host])[host] {
            // Most likely gone already; adding it again says more.
            logger.warning("could not delete a host from the virtual machine", metadata: ["host": "\(host)", "reason": "\(failure)"])
        }
        health.removed(host)
    }

    /// One attempt to add `host` to the virtual machine again.
    func rejoin(_ host: String, attempt: Int) async {
        // PvmDupHost is a failure too: a deleted host stays in PVM's table until its pvmd
        // acknowledges the halt or is found dead.
        let failure = await launcher.add(hosts: [host])[host]
        do {
            try await carryOut(health.rejoinFinished(host, failure: failure, now: clock()))
        } catch {
            logger.error("could not record a host's return", metadata: ["host": "\(host)", "attempt": "\(attempt)", "error": "\(error)"])
        }
    }
}
