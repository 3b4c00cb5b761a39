"""Your bot: this is the file to edit.

Each handler receives the message and its content, already typed, and returns
what to send back to the same conversation: a string, `React("❤️")` to react to
the message, a list of these, or None for no reply. Content types are in
`events.py` (Text, Attachment, Voice, Contact, RichLink, Reaction, ThreadReply,
Album, and Unknown for anything newer).

Handlers run after Spectrum's delivery has been stored and acknowledged, so they
may take their time. If one raises, the message is tried again later, up to
SPECTRUM_MAX_ATTEMPTS times, and then parked with its error.
"""

from .botkit import Bot, React
from .events import Attachment, Message, Text

bot = Bot()


@bot.on(Text)
def echo(message: Message, content: Text) -> str:
    return f"You said: {content.text}"


@bot.on(Attachment)
def thank_for_attachment(message: Message, content: Attachment) -> list[str | React]:
    # Spectrum sends attachment metadata only; the bytes are fetched through the SDK.
    return [React("❤️"), f"Thanks for the {content.mime_type or 'file'}!"]
