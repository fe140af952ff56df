"""The kiosk's flows: what a citizen's taps lead to, one module each (ticket, guides,
queue, rating, ID card and check-in, the 24-hour area). Each flow is written against
:class:`kiosk.host.KioskHost` and owns the screens only it draws."""
