// SystemdSupport: see the module's other files.
