from helpers.paths import output_dir, use_drive, warn_if_drive_missing

if USE_DRIVE:
    use_drive()
warn_if_drive_missing()  # COURSE_OUTPUT on /content/drive but Drive not mounted: files would be lost
print("Outputs go to", output_dir())
