@testable import PVM
import Testing

struct PVMMailboxTests {
    private func message(_ source: Int32, _ tag: Int32, _ text: String = "") -> PVMReceivedMessage {
        PVMReceivedMessage(source: PVMTaskID(rawValue: source), message: PVMMessage(tag: tag, fields: [.string(text)]))
    }

    @Test func filtersMatchSourceAndTag() {
        let received = message(0x40002, 5)
        #expect(PVMMailbox.Filter().matches(received))
        #expect(PVMMailbox.Filter(source: PVMTaskID(rawValue: 0x40002)).matches(received))
        #expect(!PVMMailbox.Filter(source: PVMTaskID(rawValue: 0x40003)).matches(received))
        #expect(PVMMailbox.Filter(tag: 5).matches(received))
        #expect(!PVMMailbox.Filter(source: PVMTaskID(rawValue: 0x40002), tag: 6).matches(received))
    }

    @Test func takesTheOldestMatchAndKeepsTheRestInOrder() {
        var mailbox = PVMMailbox()
        for (index, tag) in [1, 2, 1, 2].enumerated() {
            #expect(mailbox.deliver(message(0x40002, Int32(tag), "\(index)")) == nil)
        }
        #expect(mailbox.take(.init(tag: 2))?.fields == [.string("1")])
        #expect(mailbox.take(.init(tag: 2))?.fields == [.string("3")])
        #expect(mailbox.take(.init(tag: 2)) == nil)
        #expect(mailbox.take(.init())?.fields == [.string("0")])
        #expect(mailbox.take(.init())?.fields == [.string("2")])
        #expect(mailbox.queued.isEmpty)
    }

    @Test func dropsTheOldestBeyondCapacity() {
        var mailbox = PVMMailbox()
        for index in 0..<PVMMailbox.capacity {
            #expect(mailbox.deliver(message(1, 1, "\(index)")) == nil)
        }
        #expect(mailbox.deliver(message(1, 1, "last"))?.fields == [.string("0")])
        #expect(mailbox.queued.count == PVMMailbox.capacity)
    }

    @Test func aWaiterGetsAMatchingMessageInsteadOfTheQueue() async throws {
        let box = MailboxBox()
        let received = try await withCheckedThrowingContinuation { continuation in
            box.mailbox.wait(.init(id: box.mailbox.nextWaiterID(), filter: .init(tag: 9), continuation: continuation))
            #expect(box.mailbox.deliver(message(1, 8, "other")) == nil)
            #expect(box.mailbox.deliver(message(1, 9, "mine")) == nil)
        }
        #expect(received.fields == [.string("mine")])
        #expect(box.mailbox.queued.map(\.tag) == [8])
    }
}

/// Holds a mailbox across the continuation closure in the test above.
private final class MailboxBox {
    var mailbox = PVMMailbox()
}
