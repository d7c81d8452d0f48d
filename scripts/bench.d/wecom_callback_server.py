"""A WeCom self-built app's callback server in Python, as the projects Tapwire replaces
write it (FastAPI on uvicorn), for scripts/bench's callback benchmark (BENCH=callback).

Per callback it does what such a bot does before its own logic: checks msg_signature,
decrypts the WXBizMsgCrypt envelope, parses the message XML, and answers with an
encrypted passive reply echoing the text. Written from WeCom's document 91144
(加解密方案说明), not from Tencent's sample code:

- signature = sha1 of token, timestamp, nonce and the ciphertext, sorted and joined;
- AESKey = base64_decode(EncodingAESKey + "="), AES-256-CBC, IV = AESKey[:16];
- plaintext = 16 random bytes | msg length (4 bytes, big endian) | msg | corp id,
  PKCS#7-padded to a multiple of 32 bytes.

Run: uvicorn --app-dir scripts/bench.d wecom_callback_server:app --workers 2
Secrets: WECOM_TOKEN, WECOM_AES_KEY, WECOM_CORP_ID (default: WeCom's documented example).
"""

import base64
import hashlib
import hmac
import os
import struct
import time
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request, Response

TOKEN = os.environ.get("WECOM_TOKEN", "QDG6eK")
AES_KEY = base64.b64decode(
    os.environ.get("WECOM_AES_KEY", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C") + "="
)
CORP_ID = os.environ.get("WECOM_CORP_ID", "wx5823bf96d3bd56c7").encode()
IV = AES_KEY[:16]
BLOCK = 32

app = FastAPI()


class Refused(Exception):
    pass


def signature(timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce, encrypt])).encode()).hexdigest()


def decrypt(msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
    if not hmac.compare_digest(signature(timestamp, nonce, encrypt), msg_signature):
        raise Refused("bad signature")
    data = base64.b64decode(encrypt)
    if not data or len(data) % BLOCK:
        raise Refused("ciphertext is not whole 32-byte blocks")
    decryptor = Cipher(algorithms.AES(AES_KEY), modes.CBC(IV)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK:
        raise Refused("bad padding")
    plain = plain[:-pad]
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise Refused("message length beyond the plaintext")
    if plain[20 + length :] != CORP_ID:
        raise Refused("another corp's message")
    return plain[20 : 20 + length].decode()


def encrypt(reply: str, timestamp: str, nonce: str) -> str:
    msg = reply.encode()
    plain = os.urandom(16) + struct.pack(">I", len(msg)) + msg + CORP_ID
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(AES_KEY), modes.CBC(IV)).encryptor()
    sealed = base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
    return (
        f"<xml><Encrypt><![CDATA[{sealed}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{signature(timestamp, nonce, sealed)}]]></MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@app.get("/callback")
async def verify_url(msg_signature: str, timestamp: str, nonce: str, echostr: str):
    try:
        return Response(decrypt(msg_signature, timestamp, nonce, echostr), media_type="text/plain")
    except Refused as error:
        return Response(str(error), status_code=403)


@app.post("/callback")
async def receive(request: Request, msg_signature: str, timestamp: str, nonce: str):
    body = await request.body()
    try:
        envelope = ET.fromstring(body)
        message = ET.fromstring(decrypt(msg_signature, timestamp, nonce, envelope.findtext("Encrypt") or ""))
    except (Refused, ET.ParseError, ValueError) as error:
        return Response(str(error), status_code=403 if isinstance(error, Refused) else 400)
    if message.findtext("MsgType") != "text":
        return Response("")
    # The bot's logic: echo the text back to its sender.
    reply = (
        f"<xml><ToUserName>{cdata(message.findtext('FromUserName') or '')}</ToUserName>"
        f"<FromUserName>{cdata(message.findtext('ToUserName') or '')}</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(message.findtext('Content') or '')}</Content></xml>"
    )
    return Response(encrypt(reply, timestamp, nonce), media_type="application/xml")
