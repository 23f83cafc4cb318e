"""An echo bot on pipecat that pinless sends held callers to with `streamUrl`.

pinless speaks Twilio's Media Streams protocol, so the bot uses pipecat's
own pieces for Twilio: `parse_telephony_websocket` reads the `connected`
and `start` messages, `TwilioFrameSerializer` turns the `media` messages
into audio frames and back, and `FastAPIWebsocketTransport` carries them.
The pipeline is one small processor that plays the caller's audio back to
them: no speech recognition, no language model, nothing that needs a key
or a model download. Put your STT → LLM → TTS services where `Echo` is.

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python bot.py --port 8765
    # then route callers to ws://127.0.0.1:8765/ws (see the README)

With `--port 0` the system picks a free port. Either way the bot prints
one line `listening on ws://HOST:PORT/ws` once it accepts connections:
tests and scripts wait for that line.
"""

import argparse
import asyncio
import socket
import sys

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger

from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner

# Telephone audio end to end: pinless sends μ-law at 8 kHz, and a pipeline
# at the same rate spares the serializer any resampling.
SAMPLE_RATE = 8000


class Echo(FrameProcessor):
    """Turns each chunk of the caller's audio into bot audio."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            # The input frame is consumed here: passed on as well, the
            # output transport would see the caller's audio twice.
            await self.push_frame(
                OutputAudioRawFrame(
                    audio=frame.audio,
                    sample_rate=frame.sample_rate,
                    num_channels=frame.num_channels,
                )
            )
        else:
            await self.push_frame(frame, direction)


async def run_bot(websocket: WebSocket):
    """One call: from pinless's `start` to the socket closing."""
    transport_type, call = await parse_telephony_websocket(websocket)
    if transport_type != "twilio":
        logger.warning(f"not a Media Streams start ({transport_type}): closing")
        await websocket.close()
        return
    logger.info(f"call {call.call_id} from {call.body.get('From')}: {dict(call.body)}")

    serializer = TwilioFrameSerializer(
        stream_sid=call.stream_id,
        call_sid=call.call_id,
        # pinless is not Twilio: the call ends when the bot closes the
        # socket, not through Twilio's REST API (and no credentials exist).
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            serializer=serializer,
        ),
    )
    pipeline = Pipeline([transport.input(), Echo(), transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
        ),
        # An echo bot hears nothing that counts as conversation: without
        # this it would be cancelled as idle after a few minutes.
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _websocket):
        logger.info(f"call {call.call_id}: pinless closed the stream")
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


app = FastAPI()


@app.websocket("/ws")
async def media_stream(websocket: WebSocket):
    await websocket.accept()
    await run_bot(websocket)


def listening_socket(host: str, port: int) -> socket.socket:
    """Binds before uvicorn starts, so `--port 0` can be reported."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


async def serve(host: str, port: int):
    sock = listening_socket(host, port)
    bound = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"listening on ws://{bound[0]}:{bound[1]}/ws", flush=True)
    await serving


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
