print("lockvault")
