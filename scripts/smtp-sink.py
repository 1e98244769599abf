"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1, on the port given (0: any
free one), writing every message it accepts to DIR as NNNN.eml. Prints the port, then serves
until stdin closes (the test holding it ends). With --reject-first N it answers the first N
messages with a temporary failure (451), for retry tests."""

import argparse
import pathlib
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, reject_first):
        self.directory = pathlib.Path(directory)
        self.reject_left = reject_first
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.reject_left > 0:
                self.reject_left -= 1
                return "451 try again later"
            self.count += 1
            name = self.directory / f"{self.count:04d}.eml"
        partial = name.with_suffix(".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(name)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reject-first", type=int, default=0)
    args = parser.parse_args()
    pathlib.Path(args.directory).mkdir(parents=True, exist_ok=True)
    port = args.port
    if port == 0:
        # aiosmtpd's controller checks its server by connecting to the port it was given, so
        # it must be given a real one: ask the kernel for a free one first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(Sink(args.directory, args.reject_first), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
