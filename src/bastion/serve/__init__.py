"""`bastion serve`: an OpenAI-compatible guard proxy with a moderation endpoint and an audit log.

The app lives in `bastion.serve.app.create_app`; its dependencies come with the `serve`
extra, so this package imports nothing heavy until a server is built.
"""
