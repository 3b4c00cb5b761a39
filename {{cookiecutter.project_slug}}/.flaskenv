# Read by the `flask` command: `flask spectrum ...` works here without --app.
FLASK_APP={{ cookiecutter.package_name }}
