"""Makes moto's SQS cost per request independent of queue depth (moto 5.2.5 only).

Why: moto's SQS walks every message of a queue, with two clock reads per message, on each
SendMessage (it builds all queue attributes, ApproximateNumberOfMessages* included, to read
ContentBasedDeduplication), on each received message (its retention check builds the queue
attributes three times), on each DeleteMessage and ChangeMessageVisibility (a scan for the
receipt handle), and its long poll re-lists the visible messages on every wake-up. Filling a
queue is therefore quadratic: at 1,000 queued messages a send took ~65 ms and a receive+delete
~85 ms on the shared test machine, 97% of it in Queue.attributes (cProfile; see
docs/benchmarks/sns-sqs.md). The conformance tests queue 5,000-10,000 events.

What `install()` changes, keeping moto's observable behaviour (visibility timeouts, receive
counts, redrive to the DLQ, FIFO message-group blocking and 5-minute deduplication, retention):

- the clock: moto's `unix_time` builds two datetimes per call; `time.time()` is the same number;
- send: reads ContentBasedDeduplication from the queue field instead of building every attribute;
  FIFO deduplication looks the id up in a per-queue index instead of scanning the queue;
- receive: scans the queue in order and stops at the requested count (moto listed every visible
  message first), checks retention from the queue field, and indexes each new receipt handle;
  a long poll sleeps until the queue changes (send, delete, visibility change) or 1 s passes,
  where moto re-listed the visible messages on every wake-up (and spun when all of them were
  held back by in-flight FIFO groups);
- delete and change-visibility: find the message through the receipt-handle index; a handle the
  index does not know (e.g. from a state saved before this module existed) falls back to moto's
  own scan, so moto still decides what is valid;
- the ApproximateNumberOf* counts: one pass with one clock read instead of one per message;
- every SQS operation on a queue holds that queue's lock (moto's own, re-entrant), since moto
  serves requests on threads and the index must stay consistent with the message list;
- SQS Message objects are no longer appended to moto's per-class instance list (used only by
  moto's dashboard and in-process reset), which kept every message ever sent, and every copy
  handed to a receiver, alive for the life of the server.

The replaced functions are pinned by a hash of their source: if moto changes them (another
version), `install()` raises, naming what changed, instead of silently serving a stale copy.
"""

import hashlib
import inspect
import string
import time
from copy import deepcopy
from typing import Any

import moto
from moto.core import utils as moto_utils
from moto.moto_api._internal import mock_random as random
from moto.sqs import models
from moto.sqs.exceptions import InvalidParameterValue, MissingParameter, ReceiptHandleIsInvalid
from moto.sqs.models import (
    DEDUPLICATION_TIME_IN_SECONDS,
    MAXIMUM_MESSAGE_DELAY,
    Message,
    Queue,
    SQSBackend,
    _filter_message_attributes,
)

MOTO_VERSION = "5.2.5"

# sha256 (first 16 hex digits) of the source of every moto function this module replaces or
# builds on. Recompute with inspect.getsource when moving to another moto version, after
# re-reading what changed.
PINNED_SOURCES = {
    "Queue.messages": (lambda: Queue.messages.fget, "03a531dbcbcf9aee"),
    "Queue.approximate_number_of_messages_delayed": (
        lambda: Queue.approximate_number_of_messages_delayed.fget,
        "c3c1dadb0c42ed5f",
    ),
    "Queue.approximate_number_of_messages_not_visible": (
        lambda: Queue.approximate_number_of_messages_not_visible.fget,
        "5dbecc4dda174358",
    ),
    "Queue.add_message": (lambda: Queue.add_message, "f27c9231c1f20433"),
    "Queue.delete_message": (lambda: Queue.delete_message, "fa6fd5b9bd2cafb4"),
    "Queue.wait_for_messages": (lambda: Queue.wait_for_messages, "58432562ccf2e13e"),
    "SQSBackend._validate_message": (lambda: SQSBackend._validate_message, "39cb57c19e596164"),
    "SQSBackend.send_message": (lambda: SQSBackend.send_message, "bf161af09a9e6b86"),
    "SQSBackend.receive_message": (lambda: SQSBackend.receive_message, "065f3e5e7d214408"),
    "SQSBackend.change_message_visibility": (
        lambda: SQSBackend.change_message_visibility,
        "f0e9df5f66627114",
    ),
    "SQSBackend.purge_queue": (lambda: SQSBackend.purge_queue, "443ea1ae7b15230c"),
    "Message.visible": (lambda: Message.visible.fget, "5129b573308de62a"),
    "Message.delayed": (lambda: Message.delayed.fget, "e2fd48abf582683a"),
    "unix_time": (lambda: moto_utils.unix_time, "f0576ec9e5f586e5"),
}


def check_moto() -> None:
    """Raises RuntimeError unless moto and every function this module relies on are as pinned."""
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(f"moto_sqs_speedups is written for moto {MOTO_VERSION}, found {moto.__version__}")
    changed = [
        name
        for name, (get, digest) in PINNED_SOURCES.items()
        if hashlib.sha256(inspect.getsource(get()).encode()).hexdigest()[:16] != digest
    ]
    if changed:
        raise RuntimeError(f"moto {moto.__version__}: these functions changed shape, re-check the patches: {changed}")


# ------------------------------------------------------------------------------------- clock


def unix_time(dt: Any = None) -> float:
    """moto's unix_time (seconds since the epoch, UTC) without building datetimes for `now`."""
    return time.time() if dt is None else ORIGINAL_UNIX_TIME(dt)


def unix_time_millis(dt: Any = None) -> float:
    return unix_time(dt) * 1000.0


ORIGINAL_UNIX_TIME = moto_utils.unix_time

# ------------------------------------------------------------------------ per-queue indexes


class QueueIndex:
    """What this module keeps per queue next to moto's message list (pickled with the queue).

    handles: every receipt handle handed out by receive -> its message. A hint only: a hit is
    confirmed against the queue's message list before use, and stale entries are dropped then.
    dedup: FIFO deduplication id -> the latest message with that id that entered the queue.
    version: bumped on every change that can make a message receivable, under the queue lock;
    long polls wait for it to move.
    """

    def __init__(self) -> None:
        self.handles: dict[str, Message] = {}
        self.dedup: dict[str, Message] = {}
        self.version = 0


def index_of(queue: Queue) -> QueueIndex:
    index = queue.__dict__.get("_eventwire_index")
    if index is None:
        index = queue._eventwire_index = QueueIndex()
    return index


def changed(queue: Queue) -> None:
    """Wakes long polls of `queue`: something may have become receivable. Hold its lock."""
    index_of(queue).version += 1
    queue._messages_lock.notify_all()


def forget(queue: Queue, message: Message) -> None:
    index = index_of(queue)
    for handle in message.all_receipt_handles:
        index.handles.pop(handle, None)
    if message.deduplication_id is not None and index.dedup.get(message.deduplication_id) is message:
        del index.dedup[message.deduplication_id]


def is_receivable(message: Message, now_ms: float) -> bool:
    """moto's `message.visible and not message.delayed`, against one clock reading."""
    return now_ms > message.visible_at and not now_ms < message.delayed_until


# ------------------------------------------------------------------------------- Queue


def messages(self: Queue) -> list[Message]:
    now = unix_time_millis()
    return [m for m in self._messages if is_receivable(m, now)]


def approximate_number_of_messages_delayed(self: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def approximate_number_of_messages_not_visible(self: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def add_message(self: Queue, message: Message) -> None:
    if self.lambda_event_source_mappings:
        return ORIGINAL["Queue.add_message"](self, message)  # not used by eventwire; moto's own path
    with self._messages_lock:
        index = index_of(self)
        # moto: a FIFO message is dropped when a message with its deduplication id entered the
        # queue less than 5 minutes earlier and is still in it. The latest such message decides:
        # an older one has an even larger gap.
        if self.fifo_queue and (self.content_based_deduplication or message.deduplication_id):
            earlier = index.dedup.get(message.deduplication_id)
            if earlier is not None and earlier in self._messages:
                diff = message.sent_timestamp - earlier.sent_timestamp
                if diff / 1000 < DEDUPLICATION_TIME_IN_SECONDS:
                    return None
            index.dedup[message.deduplication_id] = message
        self._messages.append(message)
        changed(self)
    return None


def delete_message(self: Queue, receipt_handle: str) -> None:
    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            return  # moto: deleting twice is fine
        message = index_of(self).handles.get(receipt_handle)
        if message is not None:
            try:
                self._messages.remove(message)
            except ValueError:  # left the queue another way (DLQ, purge): let moto decide
                forget(self, message)
                message = None
        if message is None:
            ORIGINAL["Queue.delete_message"](self, receipt_handle)
        else:
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            forget(self, message)
        changed(self)  # a FIFO group may be free again


def wait_for_messages(self: Queue, timeout: int) -> None:
    with self._messages_lock:
        seen = index_of(self).version
        self._messages_lock.wait_for(lambda: index_of(self).version != seen, timeout=timeout)


# ------------------------------------------------------------------------------ backend


def validate_message(
    self: SQSBackend,
    queue: Queue,
    message_body: str,
    delay_seconds: int,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    validate_group_id: bool = True,
) -> None:
    # moto's checks, reading ContentBasedDeduplication from the field (moto: the attribute dict).
    if queue.fifo_queue:
        if not queue.content_based_deduplication and not group_id:
            raise MissingParameter("MessageGroupId")
        if not queue.content_based_deduplication and group_id and not deduplication_id:
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )
        if delay_seconds > 0:
            raise InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                "The request include parameter that is not valid for this queue type."
            )
    if len(message_body) > queue.maximum_message_size:
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{queue.maximum_message_size} bytes."
        )
    if group_id is None and queue.fifo_queue:
        raise MissingParameter("MessageGroupId")


def send_message(
    self: SQSBackend,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Message:
    # moto's send_message; only the ContentBasedDeduplication test reads the field.
    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
    message = Message(str(random.uuid4()), message_body, system_attributes)
    if queue.fifo_queue and queue.content_based_deduplication:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(random.choice(string.digits) for _ in range(20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay_seconds > MAXIMUM_MESSAGE_DELAY:
        raise InvalidParameterValue(
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message.mark_sent(delay_seconds=delay_seconds)
    queue.add_message(message)
    return message


def receive_message(
    self: SQSBackend,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Message]:
    # moto's receive_message, walking the queue only until `count` messages are found.
    if message_attribute_names is None:
        message_attribute_names = []
    queue = self.get_queue(queue_name)
    index = index_of(queue)
    result: list[Message] = []
    previous_result_count = 0
    polling_end = unix_time() + wait_seconds_timeout

    with queue._messages_lock:
        currently_pending_groups = deepcopy(queue.pending_message_groups)
        while True:
            if result or (wait_seconds_timeout and unix_time() > polling_end):
                break
            seen = index.version
            messages_to_dlq: list[Message] = []
            now = unix_time_millis()
            for message in queue._messages:
                if not is_receivable(message, now):
                    continue
                if message in queue.pending_messages:
                    # Pending but visible again: the consumer timed out.
                    queue.pending_messages.remove(message)
                    currently_pending_groups = deepcopy(queue.pending_message_groups)
                if message.group_id and queue.fifo_queue and message.group_id in currently_pending_groups:
                    continue  # an earlier message of this group is in flight
                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]
                ):
                    messages_to_dlq.append(message)
                    continue
                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                index.handles[message.receipt_handle] = message
                message_copy = deepcopy(message)
                _filter_message_attributes(message_copy, message_attribute_names)
                # moto's retention check (is_message_valid_based_on_retention_period).
                if queue.message_retention_period + message.sent_timestamp / 1000 <= unix_time():
                    break
                result.append(message_copy)
                if len(result) >= count:
                    break

            for message in messages_to_dlq:
                queue._messages.remove(message)
                forget(queue, message)
                queue.dead_letter_queue.add_message(message)

            if previous_result_count == len(result):
                if wait_seconds_timeout == 0:
                    break
                # moto: wait up to 1 s for a message, then look again (visibility expiries are
                # noticed by that periodic look). Here: until the queue changed or 1 s passed.
                queue._messages_lock.wait_for(lambda: index.version != seen, timeout=1)
                continue
            previous_result_count = len(result)
    return result


def change_message_visibility(
    self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        message = index_of(queue).handles.get(receipt_handle)
        if message is not None and message not in queue._messages:
            forget(queue, message)
            message = None
        if message is None:
            ORIGINAL["SQSBackend.change_message_visibility"](self, queue_name, receipt_handle, visibility_timeout)
        else:
            # moto's checks and effect for the message found.
            given = unix_time_millis() + int(visibility_timeout) * 1000
            if given - message.sent_timestamp > 43200 * 1000:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                    "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
                )
            message.change_visibility(visibility_timeout)
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)
        changed(queue)  # visible again at once (e.g. given back by a closing consumer)


def purge_queue(self: SQSBackend, queue_name: str) -> None:
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        ORIGINAL["SQSBackend.purge_queue"](self, queue_name)
        queue._eventwire_index = QueueIndex()


class Untracked(list):
    """A list that keeps nothing: moto's instance tracking, switched off for SQS messages."""

    def append(self, _item: Any) -> None:
        pass


ORIGINAL: dict[str, Any] = {}


def install() -> None:
    """Checks the moto version and sources, then patches moto's SQS in this process."""
    check_moto()
    ORIGINAL["Queue.add_message"] = Queue.add_message
    ORIGINAL["Queue.delete_message"] = Queue.delete_message
    ORIGINAL["SQSBackend.change_message_visibility"] = SQSBackend.change_message_visibility
    ORIGINAL["SQSBackend.purge_queue"] = SQSBackend.purge_queue

    # moto.sqs.models imported these names; its functions look them up there.
    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis

    Queue.messages = property(messages)
    Queue.approximate_number_of_messages_delayed = property(approximate_number_of_messages_delayed)
    Queue.approximate_number_of_messages_not_visible = property(approximate_number_of_messages_not_visible)
    Queue.add_message = add_message
    Queue.delete_message = delete_message
    Queue.wait_for_messages = wait_for_messages
    SQSBackend._validate_message = validate_message
    SQSBackend.send_message = send_message
    SQSBackend.receive_message = receive_message
    SQSBackend.change_message_visibility = change_message_visibility
    SQSBackend.purge_queue = purge_queue
    Message.instances_tracked = Untracked()
