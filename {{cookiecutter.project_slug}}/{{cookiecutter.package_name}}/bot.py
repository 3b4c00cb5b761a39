"""Your bot, the file to edit (README.md: "Writing your bot"). A handler returns a str, a list,
None, or replies.py's React("👍"), Markdown, Threaded, File, VoiceNote, ContactCard, Link, Later."""

from .botkit import Bot, Command, Context, React
from .events import Attachment, Text

bot = Bot()


@bot.command("remember")  # "/remember" starts a two-step conversation
def remember(ctx: Context, command: Command) -> str:
    ctx.state["asked"] = True
    return "What should I remember?"


@bot.on(Text, when=lambda ctx: ctx.state.get("asked"))  # ... the answer to that question
def remember_answer(ctx: Context, text: Text) -> str:
    ctx.state.update(asked=None, note=text.text)
    return f"Got it: “{text.text}”. /recall shows it."


@bot.command("recall")
def recall(ctx: Context, command: Command) -> str:
    return str(ctx.state.get("note", "Nothing yet: try /remember."))


@bot.text("hello")  # a text pattern: a string (any case) or a compiled regex
def greet(ctx: Context, match: object) -> str:
    return "Hello! Try /remember."


@bot.on(Attachment)  # a content type
def thanks(ctx: Context, file: Attachment) -> list[str | React]:
    return [React("❤️"), f"Thanks for the {file.mime_type or 'file'}!"]


@bot.on(Text)  # every other text
def echo(ctx: Context, text: Text) -> str:
    return f"You said: {text.text}"
